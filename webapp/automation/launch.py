"""Starting what a schedule or trigger names, and the ${trigger...} references in its
parameter values.

A task target is a clone of its base task with the parameter values set, enqueued. A
pipeline target is named by its controller's project, name and (optionally) version: the
definition it runs is that of the pipeline's latest run started by its controller script
or a user (runs started by schedules and triggers are copies, so one schedule's parameter
values never become another's defaults), run anew by the engine with the parameter values
overriding the run's.
"""

import re
from dataclasses import dataclass

from webapp.core import access, engine, services
from webapp.core.choices import ArtifactState, TaskType
from webapp.core.errors import InvalidInput, NotFound
from webapp.core.models import Artifact, PipelineRun, Task

from .choices import TargetKind

REFERENCE = re.compile(r"\$\{([^}]*)\}")
ARTIFACT_FIELDS = ("url", "id", "name", "size", "sha256", "kind")
TRIGGER_FIELDS = ("id", "name", "project", "status", "type")
MAX_PARAMETERS = 200


@dataclass
class Started:
    task: Task
    run: PipelineRun | None = None


# ---------------------------------------------------------------- the pipeline named


def pipeline_runs(user, project: str, name: str, version: str = ""):
    """The runs that define the pipeline, newest first, among those `user` may see."""
    runs = PipelineRun.objects.filter(
        controller__in=access.visible_tasks(user).values("pk"),
        controller__project__name=project,
        controller__name=name,
    ).exclude(controller__runtime__has_key="started_by")
    if version:
        runs = runs.filter(controller__runtime__version=version)
    return runs.select_related("controller__project").order_by("-created")


def latest_definition(user, project: str, name: str, version: str = "") -> PipelineRun:
    run = pipeline_runs(user, project, name, version).first()
    if run is None:
        version_text = f" version {version!r}" if version else ""
        raise NotFound(
            f"pipeline {name!r}{version_text} in project {project!r} not found: run its "
            "controller script once (the latest run's definition is what runs)",
            field="pipeline_name",
        )
    return run


# ---------------------------------------------------------------- checking values


def checked_values(values, *, field: str, allow_trigger: bool) -> dict:
    """Parameter values as strings; references only to the triggering task, and only in a
    trigger's values."""
    if not isinstance(values, dict):
        raise InvalidInput(f"{field} must be an object", field=field)
    if len(values) > MAX_PARAMETERS:
        raise InvalidInput(f"{field}: at most {MAX_PARAMETERS} values", field=field)
    clean = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 255:
            raise InvalidInput(f"{field}: names must be 1-255 characters", field=field)
        if isinstance(value, bool):
            value = str(value)
        elif isinstance(value, int | float):
            value = repr(value) if isinstance(value, float) else str(value)
        elif not isinstance(value, str) or len(value) > 10_000:
            raise InvalidInput(
                f"{field}: {key!r} must be a string or number (up to 10,000 characters)",
                field=field,
            )
        for reference in REFERENCE.findall(value):
            _check_reference(reference, key, field, allow_trigger)
        clean[key.strip()] = value
    return clean


def _check_reference(reference: str, key: str, field: str, allow_trigger: bool) -> None:
    where = f"{field}: {key!r}"
    if reference == "task.id" and allow_trigger:
        return  # ClearML's name for the triggering task's id
    if not reference.startswith("trigger."):
        raise InvalidInput(
            f"{where}: unknown reference ${{{reference}}} (use ${{trigger.id}}, "
            "${trigger.artifacts.NAME.url}, ${trigger.parameters.Section/name})",
            field=field,
        )
    if not allow_trigger:
        raise InvalidInput(f"{where}: a schedule has no triggering task", field=field)
    parts = reference.split(".")
    if len(parts) == 2 and parts[1] in TRIGGER_FIELDS:
        return
    if len(parts) == 4 and parts[1] == "artifacts" and parts[2] and parts[3] in ARTIFACT_FIELDS:
        return
    if len(parts) >= 3 and parts[1] == "parameters" and "/" in ".".join(parts[2:]):
        return
    raise InvalidInput(f"{where}: cannot read ${{{reference}}}", field=field)


# ---------------------------------------------------------------- resolving references


def resolve(values: dict, subject: Task | None) -> dict:
    """`values` with ${trigger...} replaced from the triggering task (or pipeline)."""
    if subject is None:
        return dict(values)
    return {
        key: REFERENCE.sub(lambda m: _value(m.group(1), subject), v) for key, v in values.items()
    }


def _value(reference: str, subject: Task) -> str:
    if reference == "task.id":
        return subject.pk
    parts = reference.split(".")
    field = parts[1]
    if len(parts) == 2:
        return {
            "id": subject.pk,
            "name": subject.name,
            "project": subject.project.name,
            "status": subject.status,
            "type": subject.type,
        }[field]
    if field == "artifacts":
        artifact = _artifact(subject, parts[2])
        return str(getattr(artifact, parts[3]))
    section, _, name = ".".join(parts[2:]).partition("/")
    entry = (subject.hyperparameters or {}).get(section, {}).get(name)
    if entry is None:
        raise NotFound(f"the triggering task has no parameter {section}/{name}")
    return str(entry.get("value", "")) if isinstance(entry, dict) else str(entry)


def _artifact(subject: Task, name: str) -> Artifact:
    """A task's artifact; for a pipeline, its controller's or else the last step's (in run
    order) that has one of that name."""
    artifacts = Artifact.objects.filter(name=name)
    found = artifacts.filter(task=subject).first()
    if found is None and subject.type == TaskType.CONTROLLER:
        run = PipelineRun.objects.filter(controller=subject).first()
        if run is not None:
            steps = (
                run.nodes.exclude(task=None).order_by("-position").values_list("task", flat=True)
            )
            for task_id in steps:
                found = artifacts.filter(task_id=task_id).first()
                if found is not None:
                    break
    if found is None:
        raise NotFound(f"{subject.name} ({subject.pk[:8]}) has no artifact {name!r}")
    if found.state != ArtifactState.READY:
        raise InvalidInput(f"artifact {name!r} of {found.task_id[:8]} is not ready")
    return found


# ---------------------------------------------------------------- starting


def nested(values: dict) -> dict:
    """{"Section/name": v} -> {"Section": {"name": v}}; a bare name is in General."""
    sections: dict[str, dict] = {}
    for key, value in values.items():
        section, _, name = key.partition("/")
        if not name:
            section, name = "General", section
        sections.setdefault(section, {})[name] = value
    return sections


def start(target, *, user, subject: Task | None, marker: dict) -> Started:
    """Start `target` (a Schedule or Trigger) as `user`; `marker` is recorded on what it
    starts (runtime "started_by"), which is also how pipeline definitions skip it."""
    if user is None:
        raise NotFound("its owner's account no longer exists")
    tags = list(target.tags or [])
    if target.target_kind == TargetKind.PIPELINE:
        run = latest_definition(
            user, target.pipeline_project, target.pipeline_name, target.pipeline_version
        )
        new_run = engine.start_again(
            run,
            user=user,
            parameters=resolve(target.pipeline_parameters or {}, subject),
            tags=tags,
            runtime={"started_by": marker},
        )
        return Started(new_run.controller, new_run)
    base = access.visible_tasks(user).filter(pk=target.base_task_id).first()
    if base is None:
        raise NotFound("base task not found")
    values = resolve(target.task_parameters or {}, subject)
    project = target.target_project
    if project is not None and not access.may_use_project(project, user):
        raise NotFound("target project not found")
    clone = services.clone_task(
        base,
        user=user,
        project=project,
        hyperparameters=nested(values),
        tags=[*base.tags, *(tag for tag in tags if tag not in base.tags)],
        time_limit=target.time_limit,
    )
    services.edit_task(clone, {"runtime": {**clone.runtime, "started_by": marker}})
    return Started(services.enqueue_task(clone, target.queue or "default"))
