"""tasks.*: creating, reading, editing and cloning tasks through our services.

ClearML's `force` lets a client edit a task in any state (the SDK always sends it); without
it only drafts may be edited, as on clearml-server.
"""

import copy

from django.db import transaction

from webapp.core import access, limits, presenters, services
from webapp.core.choices import ApiKeyKind, TaskStatus, TaskType
from webapp.core.models import Project, Queue, Task

from .. import mirror
from ..convert import (
    CLEARML_SYSTEM_TAG,
    configuration_to_clearml,
    configuration_to_ours,
    hyperparams_to_clearml,
    hyperparams_to_ours,
    script_to_ours,
)
from ..documents import (
    extra_of,
    get_project,
    get_task,
    task_doc,
    visible_tasks,
)
from ..envelope import ApiError, bad_request
from ..query import (
    as_list,
    checked_list_filters,
    date_filter,
    matches_all_any,
    matches_list_filters,
    name_filter,
    order_fields,
    page_slice,
    project,
    split_tags,
    tags_match,
)
from ..registry import endpoint
from .projects import ensure_project, with_subprojects
from .task_moves import move_to_project

ORDER = {
    "created": "created",
    "last_update": "last_update",
    "last_change": "last_update",
    "status_changed": "last_update",
    "started": "started",
    "completed": "completed",
    "name": "name",
    "status": "status",
    "type": "type",
    "comment": "comment",
    "id": "id",
}
# Sub-documents that need the task's artifacts: computed only when asked for.
NEEDS_ARTIFACTS = ("execution",)


def save_extra(task: Task, body: dict, leftovers: dict | None = None) -> None:
    """Store the ClearML-only fields a create/edit/clone carried."""
    extra = extra_of(task)
    changed = False
    for field in ("container", "execution", "models", "output"):
        if isinstance(body.get(field), dict):
            limits.json_object(field, body[field])
    if isinstance(body.get("container"), dict):
        extra.container = body["container"]
        changed = True
    if isinstance(body.get("execution"), dict):
        execution = {**(extra.execution or {}), **body["execution"]}
        execution.pop("queue", None)
        execution.pop("artifacts", None)
        extra.execution = execution
        changed = True
    if isinstance(body.get("models"), dict):
        extra.task_models = body["models"]
        changed = True
    if body.get("output_dest") is not None or isinstance(body.get("output"), dict):
        output = dict(extra.output or {})
        if isinstance(body.get("output"), dict):
            output.update(body["output"])
        if body.get("output_dest") is not None:
            output["destination"] = body["output_dest"]
        extra.output = output
        changed = True
    if leftovers:
        extra.script = {**(extra.script or {}), **leftovers}
        changed = True
    if changed:
        extra.save()


def definition_changes(task: Task | None, body: dict) -> tuple[dict, dict]:
    """(our field changes, script leftovers) from a ClearML create/edit body."""
    changes: dict = {}
    leftovers: dict = {}
    for field in ("name", "comment"):
        if body.get(field) is not None:
            changes[field] = str(body[field])
    if body.get("type") is not None:
        if body["type"] not in TaskType.values:
            # clearml-server's schema refusal: 400/12 "validation error".
            raise bad_request(f"invalid task type {body['type']!r}", subcode=12)
        changes["type"] = body["type"]
    for field in ("tags", "system_tags"):
        if body.get(field) is not None:
            changes[field] = [str(t) for t in as_list(body[field])]
    marked = task is None or CLEARML_SYSTEM_TAG in (task.system_tags or [])
    if marked and (task is None or "system_tags" in changes):
        tags = changes.get("system_tags", [])
        changes["system_tags"] = tags + ([] if CLEARML_SYSTEM_TAG in tags else [CLEARML_SYSTEM_TAG])
    if isinstance(body.get("script"), dict):
        current = copy.deepcopy(task.script) if task is not None else {}
        changes["script"], leftovers = script_to_ours(body["script"], current)
    if body.get("hyperparams") is not None:
        changes["hyperparameters"] = hyperparams_to_ours(body["hyperparams"])
    if body.get("configuration") is not None:
        changes["configuration"] = configuration_to_ours(body["configuration"])
    if isinstance(body.get("runtime"), dict):
        changes["runtime"] = {str(k): v for k, v in body["runtime"].items()}
    return changes, leftovers


def apply_archived(task: Task, changes: dict) -> Task:
    """ClearML archives with the `archived` system tag; ours is the `archived` flag."""
    tags = changes.get("system_tags")
    if tags is None:
        return task
    wanted = "archived" in tags
    changes["system_tags"] = [t for t in tags if t != "archived"]
    if wanted and not task.archived:
        return services.archive_task(task)
    if not wanted and task.archived:
        return services.restore_task(task)
    return task


def check_editable(task: Task, force: bool) -> None:
    if not force and task.status != TaskStatus.CREATED:
        raise ApiError(
            400, f"Invalid task status: task {task.id} is {task.status} (edit needs force)", 110
        )


def _fields(changes: dict) -> dict:
    fields = {key: value for key, value in changes.items() if key != "script"}
    if "parent" in fields:
        fields["parent"] = fields["parent"].pk
    return fields


# ----------------------------------------------------------------- create, edit


@endpoint("tasks.create", verb="task.create")
def create(call):
    body = call.body
    name = str(call.require("name")).strip()
    if len(name) < 3:
        raise bad_request("task name must be at least 3 characters long")
    target = (
        get_project(call, body["project"], verb="project.read") if body.get("project") else None
    )
    parent = get_task(call, body["parent"], verb="task.read") if body.get("parent") else None
    owner, parent = access.new_task_for(
        call.rule, call.user, call.key, parent=parent, project=target
    )
    changes, leftovers = definition_changes(None, body)
    with transaction.atomic():
        task = services.create_task(
            user=owner,
            project_name=target.name if target else "Default",
            name=name,
            task_type=changes.pop("type", TaskType.TRAINING),
            script=changes.pop("script", None),
            hyperparameters=changes.pop("hyperparameters", None),
            configuration=changes.pop("configuration", None),
            tags=changes.pop("tags", None),
            comment=changes.pop("comment", ""),
            parent=parent,
        )
        changes.pop("name", None)
        # Created with the `archived` system tag: created archived, as on clearml-server.
        task = apply_archived(task, changes)
        if changes:
            task = services.edit_task(task, changes, force=True)
        save_extra(task, body, leftovers)
        record_creator(task, call.key)
    return {"id": task.id, "new_project": None}


def record_creator(task: Task, key) -> None:
    """Remember the task or worker key that made `task` (access.created)."""
    if getattr(key, "kind", None) in (ApiKeyKind.TASK, ApiKeyKind.WORKER):
        extra = extra_of(task)
        extra.created_key = key
        extra.save(update_fields=None if extra._state.adding else ["created_key"])


def new_parent(call, task: Task) -> Task | None:
    """The parent an edit moves `task` under (None: unchanged). The SDK re-parents the steps
    it creates to their pipeline's controller (`Task.set_parent`): the caller must see the
    new parent and be allowed to change it, or it is the parent of the caller's own task."""
    if not call.body.get("parent"):
        return None  # no parent given (or an empty one): the parent stays as it is
    parent = get_task(call, call.body["parent"], verb="task.read")
    ancestor, depth = parent, 0
    while ancestor is not None and depth < 64:
        if ancestor.pk == task.pk:
            raise bad_request(f"task {parent.pk} is {task.pk} or one of its descendants")
        ancestor, depth = ancestor.parent, depth + 1
    own = Task.objects.filter(pk=getattr(call.key, "task_id", None)).first()
    if not (own is not None and parent.pk == own.parent_id) and not access.permits(
        call.rule, call.user, call.key, parent
    ):
        raise ApiError(403, f"this key may not put tasks under task {parent.pk}", 21)
    return parent


@endpoint("tasks.edit", verb="task.edit")
def edit(call):
    task = get_task(call, call.require("task"))
    check_editable(task, call.flag("force"))
    changes, leftovers = definition_changes(task, call.body)
    parent = new_parent(call, task)
    with transaction.atomic():
        task = apply_archived(task, changes)
        if parent is not None and parent.pk != task.parent_id:
            changes["parent"] = parent
        if changes:
            task = services.edit_task(task, changes, force=True)
        if call.body.get("project") and call.body["project"] != task.project_id:
            task = move_to_project(call, task, call.body["project"])
        save_extra(task, call.body, leftovers)
        if "configuration" in changes:
            mirror.configuration_written(task, changes["configuration"])
    return {"updated": 1, "fields": _fields(changes)}


@endpoint("tasks.update", verb="task.edit")
def update(call):
    """Metadata only (name, comment, tags): allowed in any state, as on clearml-server."""
    task = get_task(call, call.require("task"))
    changes = {
        key: value
        for key, value in definition_changes(task, call.body)[0].items()
        if key in ("name", "comment", "tags", "system_tags")
    }
    task = apply_archived(task, changes)
    if changes:
        services.edit_task(task, changes, force=True)
    return {"updated": 1, "fields": changes}


@endpoint("tasks.set_requirements", verb="task.edit")
def set_requirements(call):
    task = get_task(call, call.require("task"))
    requirements = call.get("requirements", {})
    script, leftovers = script_to_ours({"requirements": requirements}, copy.deepcopy(task.script))
    with transaction.atomic():
        services.edit_task(task, {"script": script}, force=True)
        save_extra(task, {}, leftovers)
    return {"updated": 1, "fields": {"script.requirements": requirements}}


# ----------------------------------------------------------------- parameters


@endpoint("tasks.edit_hyper_params", verb="task.edit")
def edit_hyper_params(call):
    task = get_task(call, call.require("task"))
    check_editable_or_running(task, call.flag("force"))
    replace = str(call.get("replace_hyperparams", "none"))
    params = {} if replace == "all" else copy.deepcopy(task.hyperparameters)
    items = [p for p in as_list(call.get("hyperparams")) if isinstance(p, dict)]
    if replace == "section":
        for item in items:
            params[str(item.get("section") or "General")] = {}
    for item in items:
        section = str(item.get("section") or "General")
        params.setdefault(section, {})[str(item.get("name"))] = hyperparams_to_ours(
            {section: {"x": item}}
        )[section]["x"]
    services.edit_task(task, {"hyperparameters": params}, force=True)
    return {"updated": 1}


@endpoint("tasks.delete_hyper_params", verb="task.edit")
def delete_hyper_params(call):
    task = get_task(call, call.require("task"))
    check_editable_or_running(task, call.flag("force"))
    params = copy.deepcopy(task.hyperparameters)
    for item in as_list(call.get("hyperparams")):
        section = str(item.get("section") or "General")
        if item.get("name"):
            params.get(section, {}).pop(str(item["name"]), None)
        else:
            params.pop(section, None)
    services.edit_task(task, {"hyperparameters": params}, force=True)
    return {"deleted": 1}


@endpoint("tasks.get_hyper_params", verb="task.read")
def get_hyper_params(call):
    tasks = _listed(call, "tasks")
    result = []
    for task in tasks:
        items = [
            entry
            for section in hyperparams_to_clearml(_reading(call, task).hyperparameters).values()
            for entry in section.values()
        ]
        result.append({"task": task.id, "hyperparams": items})
    return {"params": result}


def _listed(call, field: str):
    ids = [str(t) for t in as_list(call.get(field))]
    return visible_tasks(call).filter(pk__in=ids).select_related("clearml")


def _reading(call, task: Task):
    """`task` as the caller sees it: secrets masked unless its key runs the task."""
    return presenters.read_task(task, key=call.key, run_key_id=extra_of(task).run_key_id)


@endpoint("tasks.edit_configuration", verb="task.edit")
def edit_configuration(call):
    task = get_task(call, call.require("task"))
    check_editable_or_running(task, call.flag("force"))
    config = {} if call.flag("replace_configuration") else copy.deepcopy(task.configuration)
    for item in as_list(call.get("configuration")):
        if isinstance(item, dict) and item.get("name"):
            config.update(configuration_to_ours({str(item["name"]): item}))
    with transaction.atomic():
        task = services.edit_task(task, {"configuration": config}, force=True)
        mirror.configuration_written(task, config)
    return {"updated": 1}


@endpoint("tasks.get_configurations", verb="task.read")
def get_configurations(call):
    names = set(as_list(call.get("names")))
    result = []
    for task in _listed(call, "tasks"):
        configuration = configuration_to_clearml(_reading(call, task).configuration)
        items = [item for name, item in configuration.items() if not names or name in names]
        result.append({"task": task.id, "configuration": items})
    return {"configurations": result}


@endpoint("tasks.get_configuration_names", verb="task.read")
def get_configuration_names(call):
    tasks = visible_tasks(call).filter(pk__in=[str(t) for t in as_list(call.get("tasks"))])
    return {"configurations": [{"task": t.id, "names": sorted(t.configuration)} for t in tasks]}


def check_editable_or_running(task: Task, force: bool) -> None:
    # A task running on a dev machine (or under an agent) records its own parameters.
    if task.status != TaskStatus.IN_PROGRESS:
        check_editable(task, force)


# ----------------------------------------------------------------- reading


@endpoint("tasks.get_by_id", verb="task.read")
def get_by_id(call):
    task = get_task(call, call.require("task"))
    return {"task": task_doc(task, key=call.key)}


@endpoint("tasks.get_all", "tasks.get_all_ex", verb="task.read")
def get_all(call):
    body = call.body
    queryset = visible_tasks(call).select_related("clearml")
    ids = as_list(body.get("id"))
    if ids:
        queryset = queryset.filter(pk__in=[str(i) for i in ids])
    queryset = name_filter(queryset, "name", body.get("name"))
    for field, column in (("project", "project_id"), ("parent", "parent_id")):
        values = as_list(body.get(field))
        if values and field == "project" and call.flag("include_subprojects"):
            values = with_subprojects(values)
        if values:
            queryset = queryset.filter(**{f"{column}__in": [str(v) for v in values]})
    for field in ("status", "type"):
        # The same syntax as tags: `-value` and `__$not value` exclude.
        include, exclude = split_tags(body.get(field))
        if include:
            queryset = queryset.filter(**{f"{field}__in": include})
        if exclude:
            queryset = queryset.exclude(**{f"{field}__in": exclude})
    if isinstance(body.get("comment"), str):
        queryset = queryset.filter(comment=body["comment"])
    if body.get("search_text"):
        queryset = queryset.filter(name__icontains=str(body["search_text"]))
    queryset = date_filter(queryset, body)
    queryset = queryset.order_by(*order_fields(body.get("order_by"), ORDER, ["-created"]))
    only = as_list(body.get("only_fields"))
    # Tags and `_all_` patterns are matched in Python (JSON lists are not portably
    # queryable), so those queries page after filtering; the others page in the database.
    checked_list_filters(body.get("filters"))
    python_filters = any(body.get(k) for k in ("system_tags", "tags", "_all_", "_any_", "filters"))
    if not only or any(str(f).split(".")[0] in NEEDS_ARTIFACTS for f in only):
        queryset = queryset.prefetch_related("artifacts")
        with_artifacts = True
    else:
        with_artifacts = False
    window = page_slice(body)
    rows = list(queryset) if python_filters else list(queryset[window])
    docs = []
    for row in rows:
        doc = task_doc(row, list(row.artifacts.all()) if with_artifacts else [], key=call.key)
        if python_filters and not _wanted(doc, body, call.flag("search_hidden", True)):
            continue
        docs.append(doc)
    if python_filters:
        docs = docs[window]
    if call.name == "tasks.get_all_ex":
        # As clearml-server's get_all_ex: the project and queue as {id, name}, get_all only
        # their ids.
        names = dict(
            Project.objects.filter(pk__in={d["project"] for d in docs}).values_list("pk", "name")
        )
        queues = dict(Queue.objects.values_list("pk", "name"))
        for doc in docs:
            doc["project"] = {"id": doc["project"], "name": names.get(doc["project"], "")}
            queue = (doc.get("execution") or {}).get("queue")
            if isinstance(queue, str) and queue:
                doc["execution"]["queue"] = {"id": queue, "name": queues.get(queue, "")}
    return {"tasks": [project(doc, only) for doc in docs]}


def _wanted(doc: dict, body: dict, search_hidden: bool) -> bool:
    if not search_hidden and "hidden" in doc["system_tags"]:
        return False
    if body.get("system_tags") and not tags_match(doc["system_tags"], body["system_tags"]):
        return False
    if body.get("tags") and not tags_match(doc["tags"], body["tags"]):
        return False
    if body.get("filters") and not matches_list_filters(doc, body["filters"]):
        return False
    return matches_all_any(doc, body)


# ----------------------------------------------------------------- clone, delete, archive


@endpoint("tasks.clone", verb="task.create")
def clone(call):
    body = call.body
    source = get_task(call, call.require("task"), verb="task.read")
    parent = (
        get_task(call, body["new_task_parent"], verb="task.read")
        if body.get("new_task_parent")
        else None
    )
    new_project = None
    if body.get("new_task_project"):
        target = get_project(call, body["new_task_project"], verb="project.read")
    elif body.get("new_project_name"):
        target = None
    else:
        target = source.project
    owner, parent = access.new_task_for(
        call.rule, call.user, call.key, parent=parent, project=target, source=source
    )
    if target is None:
        target = ensure_project(str(body["new_project_name"]), owner)
        new_project = {"id": target.id, "name": target.name}
    else:
        access.check_project_access(target, owner)
    source_extra = extra_of(source)
    with transaction.atomic():
        task = services.clone_task(
            source,
            user=owner,
            name=body.get("new_task_name") or source.name,
            project=target,
            parent=parent,
            tags=as_list(body["new_task_tags"]) if body.get("new_task_tags") is not None else None,
        )
        # ClearML drops these two system tags on a clone; replacing objects are whole.
        system_tags = body.get("new_task_system_tags")
        if system_tags is None:
            system_tags = [
                t for t in source.system_tags or [] if t not in ("development", "archived")
            ]
        system_tags = [str(t) for t in as_list(system_tags)]
        if (
            CLEARML_SYSTEM_TAG in (source.system_tags or [])
            and CLEARML_SYSTEM_TAG not in system_tags
        ):
            system_tags.append(CLEARML_SYSTEM_TAG)
        changes = {"system_tags": system_tags}
        if body.get("new_task_comment") is not None:
            changes["comment"] = str(body["new_task_comment"])
        if body.get("new_task_hyperparams") is not None:
            changes["hyperparameters"] = hyperparams_to_ours(body["new_task_hyperparams"])
        if body.get("new_task_configuration") is not None:
            changes["configuration"] = configuration_to_ours(body["new_task_configuration"])
        task = services.edit_task(task, changes, force=True)
        execution = {**(source_extra.execution or {}), **(body.get("execution_overrides") or {})}
        extra = extra_of(task)
        extra.container = body.get("new_task_container") or source_extra.container or {}
        extra.execution = {k: v for k, v in execution.items() if k not in ("queue", "artifacts")}
        extra.task_models = {
            "input": (source_extra.task_models or {}).get("input", []),
            "output": [],
        }
        extra.output = {"destination": (source_extra.output or {}).get("destination")}
        extra.script = copy.deepcopy(source_extra.script or {})
        if getattr(call.key, "kind", None) in (ApiKeyKind.TASK, ApiKeyKind.WORKER):
            extra.created_key = call.key
        extra.save()
    return {"id": task.id, "new_project": new_project}


@endpoint("tasks.delete", verb="task.delete")
def delete(call):
    task = get_task(call, call.require("task"))
    if task.status in (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS):
        if not call.flag("force"):
            raise ApiError(400, f"Invalid task status: task {task.id} is {task.status}", 110)
        task = services.abort_task(task, "deleted")
    steps = list(pipeline_steps(call, task)) if call.flag("include_pipeline_steps") else []
    for step in steps:
        if step.status in (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS):
            step = services.abort_task(step, "pipeline deleted")
        services.delete_task(step)
    services.delete_task(task)
    return {"deleted": 1, "updated_children": 0, "updated_models": 0, "events": {}, "urls": {}}


def pipeline_steps(call, controller: Task):
    """The controller's children that this caller sees and may act on as this endpoint."""
    for child in visible_tasks(call).filter(parent=controller):
        if access.permits(call.rule, call.user, call.key, child):
            yield child


@endpoint("tasks.get_types", verb="task.read")
def get_types(call):
    projects = [str(p) for p in as_list(call.get("projects"))]
    if not projects:
        return {"types": sorted(TaskType.values)}
    # Of given projects: the types their tasks (that the caller sees) have.
    used = visible_tasks(call).filter(project_id__in=projects).values_list("type", flat=True)
    return {"types": sorted(set(used))}
