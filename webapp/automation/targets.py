"""What schedules and triggers check alike when one is created or edited: its name, the
fields it may be given, and what it is to start."""

from webapp.core import access, secrets, services
from webapp.core.errors import Conflict, InvalidInput, NotFound
from webapp.core.models import Project, Task

from . import launch
from .choices import TargetKind

TARGET_FIELDS = (
    "target_kind",
    "base_task",
    "queue",
    "task_parameters",
    "time_limit",
    "target_project",
    "pipeline_project",
    "pipeline_name",
    "pipeline_version",
    "pipeline_parameters",
    "tags",
)


def checked_target(user, fields: dict, *, allow_trigger: bool) -> tuple[dict, Project]:
    """The target fields made whole and checked as `user` sees things, and the project the
    schedule or trigger belongs to (that of what it starts). A base task or pipeline the
    user cannot see is not found, exactly like one that does not exist."""
    kind = fields.get("target_kind") or (
        TargetKind.PIPELINE if fields.get("pipeline_name") else TargetKind.TASK
    )
    if kind not in TargetKind.values:
        raise InvalidInput(f"unknown target_kind {kind!r}", field="target_kind")
    tags = fields.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise InvalidInput("tags must be a list of strings", field="tags")
    clean = {
        "target_kind": kind,
        "tags": list(dict.fromkeys(tags)),
        "base_task": None,
        "queue": "default",
        "task_parameters": {},
        "time_limit": None,
        "target_project": None,
        "pipeline_project": "",
        "pipeline_name": "",
        "pipeline_version": "",
        "pipeline_parameters": {},
    }
    if kind == TargetKind.TASK:
        return _task_target(user, fields, clean, allow_trigger)
    return _pipeline_target(user, fields, clean, allow_trigger)


def _task_target(user, fields, clean, allow_trigger):
    base = fields.get("base_task")
    base_id = base.pk if isinstance(base, Task) else str(base or "")
    task = access.visible_tasks(user).filter(pk=base_id).first() if base_id else None
    if task is None:
        raise NotFound("base task not found", field="base_task")
    queue = (fields.get("queue") or "default").strip()
    services.get_or_create_queue(queue)  # checks the name
    time_limit = fields.get("time_limit")
    if time_limit is not None and not (isinstance(time_limit, int | float) and time_limit > 0):
        raise InvalidInput("time_limit must be a positive number of seconds", field="time_limit")
    project = task.project
    target_project = fields.get("target_project")
    if target_project:
        name = target_project.name if isinstance(target_project, Project) else target_project
        project = services.get_or_create_project(name, user)
        clean["target_project"] = project
    elif not access.may_use_project(project, user):
        raise NotFound("base task not found", field="base_task")
    clean.update(
        base_task=task,
        queue=queue,
        time_limit=float(time_limit) if time_limit is not None else None,
        task_parameters=launch.checked_values(
            fields.get("task_parameters") or {},
            field="task_parameters",
            allow_trigger=allow_trigger,
        ),
    )
    return clean, project


def _pipeline_target(user, fields, clean, allow_trigger):
    project = str(fields.get("pipeline_project") or "").strip()
    name = str(fields.get("pipeline_name") or "").strip()
    version = str(fields.get("pipeline_version") or "").strip()
    if not project or not name:
        raise InvalidInput(
            "a pipeline is named by pipeline_project and pipeline_name", field="pipeline_name"
        )
    run = launch.latest_definition(user, project, name, version)
    values = launch.checked_values(
        fields.get("pipeline_parameters") or {},
        field="pipeline_parameters",
        allow_trigger=allow_trigger,
    )
    unknown = sorted(set(values) - set(run.parameters or {}))
    if unknown:
        raise InvalidInput(
            f"pipeline_parameters: the pipeline has no parameter(s) {', '.join(unknown)} "
            f"(it has: {', '.join(sorted(run.parameters or {})) or 'none'})",
            field="pipeline_parameters",
        )
    if not access.may_use_project(run.controller.project, user):
        raise NotFound("pipeline not found", field="pipeline_name")
    clean.update(
        pipeline_project=project,
        pipeline_name=name,
        pipeline_version=version,
        pipeline_parameters=values,
    )
    return clean, run.controller.project


def keep_masked(changes: dict, row) -> dict:
    """Parameter values read back masked (the API, the dashboard's form) and saved unchanged
    keep the values stored."""
    changes = dict(changes)
    for field in ("task_parameters", "pipeline_parameters"):
        incoming, stored = changes.get(field), getattr(row, field) or {}
        if isinstance(incoming, dict):
            changes[field] = {
                key: stored[key]
                if value == secrets.MASK
                and key in stored
                and secrets.is_sensitive(str(key).rsplit("/", 1)[-1])
                else value
                for key, value in incoming.items()
            }
    return changes


def refuse_unknown(fields, editable: set, *, editing: bool) -> None:
    unknown = set(fields) - editable
    if unknown:
        verb = "cannot edit" if editing else "unknown"
        raise InvalidInput(f"{verb} field(s): {', '.join(sorted(unknown))}")


def checked_name(name) -> str:
    name = str(name or "").strip()
    if not name or len(name) > 255:
        raise InvalidInput("name must be 1-255 characters", field="name")
    return name


def refuse_duplicate_name(row) -> None:
    """Names are unique per project and kind; the database's constraint catches a race."""
    others = type(row).objects.filter(project=row.project, name=row.name)
    if others.exclude(pk=row.pk).exists():
        kind = type(row)._meta.verbose_name
        raise Conflict(f"project {row.project.name!r} already has a {kind} named {row.name!r}")


def apply_target_changes(row, changes: dict, *, user, allow_trigger: bool) -> None:
    """Set what `row` starts from `changes` over what it has, checked again as `user` sees
    it (masked parameter values given back keep the stored ones)."""
    if not set(changes) & set(TARGET_FIELDS):
        return
    changes = keep_masked(changes, row)
    current = {name: getattr(row, name) for name in TARGET_FIELDS}
    target, project = checked_target(user, {**current, **changes}, allow_trigger=allow_trigger)
    for name, value in target.items():
        setattr(row, name, value)
    row.project = project
