"""tasks.*: creating, reading, editing and cloning tasks through our services.

ClearML's `force` lets a client edit a task in any state (the SDK always sends it); without
it only drafts may be edited, as on clearml-server.
"""

import copy

from django.db import transaction

from webapp.core import access, limits, services
from webapp.core.choices import ApiKeyKind, TaskStatus, TaskType
from webapp.core.models import Project, Queue, Task

from .. import legacy_params, mirror, ordering
from ..convert import (
    CLEARML_SYSTEM_TAG,
    configuration_to_ours,
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
from ..task_models import check_models_exist, legacy_models, model_ids
from .projects import ensure_project, with_subprojects
from .task_definition import clone_definition, execution_artifacts
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
        # The queue and artifacts are ours; API 2.8's parameters are hyperparameters now.
        for field in ("queue", "artifacts", "parameters", "model_desc"):
            execution.pop(field, None)
        extra.execution = execution
        changed = True
    if isinstance(body.get("models"), dict):
        # As clearml-server's edit: the lists given replace theirs, the others stay.
        extra.task_models = {**(extra.task_models or {}), **body["models"]}
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
        script = {**(extra.script or {}), **leftovers}
        if "fields" in leftovers and "fields" in (extra.script or {}):
            # An edit sets some script fields: those set before stay set.
            script["fields"] = sorted(set(extra.script["fields"]) | set(leftovers["fields"]))
        extra.script = script
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
    legacy_params.apply_legacy(task, body, changes)
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
    body = legacy_models(call, call.body)
    check_models_exist(call, model_ids(body.get("models"), "input"))
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
        execution_artifacts(call, task, body.get("execution"), replace=False)
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
    body = legacy_models(call, call.body)
    check_models_exist(call, model_ids(body.get("models"), "input"))
    changes, leftovers = definition_changes(task, body)
    parent = new_parent(call, task)
    with transaction.atomic():
        task = apply_archived(task, changes)
        if parent is not None and parent.pk != task.parent_id:
            changes["parent"] = parent
        if changes:
            task = services.edit_task(task, changes, force=True)
        if body.get("project") and body["project"] != task.project_id:
            task = move_to_project(call, task, body["project"])
        save_extra(task, body, leftovers)
        execution_artifacts(call, task, body.get("execution"), replace=True)
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
    leftovers.pop("fields")  # which script fields were set is the script's to say, not this
    with transaction.atomic():
        services.edit_task(task, {"script": script}, force=True)
        save_extra(task, {}, leftovers)
    return {"updated": 1, "fields": {"script.requirements": requirements}}


# ----------------------------------------------------------------- reading


@endpoint("tasks.get_by_id", verb="task.read")
def get_by_id(call):
    task = get_task(call, call.require("task"))
    doc = task_doc(task, key=call.key)
    legacy_params.for_old_clients([doc], call.version)
    return {"task": doc}


@endpoint("tasks.get_all", "tasks.get_all_ex", "tasks.get_by_id_ex", verb="task.read")
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
    # So is an order by a parameter's value (ordering.py).
    by_parameters = ordering.by_parameters(body.get("order_by"))
    python_filters = by_parameters or any(
        body.get(k) for k in ("system_tags", "tags", "_all_", "_any_", "filters")
    )
    if not only or any(str(f).split(".")[0] in NEEDS_ARTIFACTS for f in only):
        queryset = queryset.prefetch_related("artifacts")
        with_artifacts = True
    else:
        with_artifacts = False
    scroll = ordering.scroll_window(body)
    window = scroll or page_slice(body)
    rows = list(queryset) if python_filters else list(queryset[window])
    docs = []
    for row in rows:
        doc = task_doc(row, list(row.artifacts.all()) if with_artifacts else [], key=call.key)
        if python_filters and not _wanted(doc, body, call.flag("search_hidden", True)):
            continue
        docs.append(doc)
    if python_filters:
        if by_parameters:
            docs = ordering.sort_docs(docs, body.get("order_by"))
        docs = docs[window]
    legacy_params.for_old_clients(docs, call.version)
    if call.name != "tasks.get_all":
        # As clearml-server's get_all_ex: the project and queue as {id, name}, get_all only
        # their ids.
        names = dict(
            Project.objects.filter(pk__in={d["project"] for d in docs}).values_list("pk", "name")
        )
        queues = {
            pk: {"id": pk, "name": name, "display_name": display_name or None}
            for pk, name, display_name in Queue.objects.values_list(
                "pk", "name", "clearml__display_name"
            )
        }
        for doc in docs:
            doc["project"] = {"id": doc["project"], "name": names.get(doc["project"], "")}
            queue = (doc.get("execution") or {}).get("queue")
            if isinstance(queue, str) and queue:
                doc["execution"]["queue"] = dict(queues.get(queue) or {"id": queue, "name": ""})
    answer = {"tasks": [project(doc, only) for doc in docs]}
    if scroll is not None:
        answer["scroll_id"] = ordering.scroll_id(scroll, len(docs))
    return answer


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
        clone_definition(call, source, task)
    return {"id": task.id, "new_project": new_project}


@endpoint("tasks.get_types", verb="task.read")
def get_types(call):
    projects = [str(p) for p in as_list(call.get("projects"))]
    if not projects:
        return {"types": sorted(TaskType.values)}
    # Of given projects: the types their tasks (that the caller sees) have.
    used = visible_tasks(call).filter(project_id__in=projects).values_list("type", flat=True)
    return {"types": sorted(set(used))}
