"""models.*: the model registry the SDK records trained weights in (RegisteredModel)."""

from django.db import transaction
from django.utils import timezone

from webapp.core import access, limits, policy
from webapp.core.choices import TaskStatus

from ..documents import check_task, extra_of, get_project, get_task, model_doc, visible_models
from ..envelope import ApiError, bad_request
from ..models import RegisteredModel
from ..query import as_list, name_filter, order_fields, page_slice, project, tags_match
from ..registry import endpoint
from ..task_models import (
    delete_model,
    model_ids,
    output_model,
    raise_iteration,
    set_output_model,
)
from .projects import with_subprojects
from .task_status import publish_task

EDITABLE = ("name", "uri", "framework", "comment", "design", "labels", "parent", "metadata")
ORDER = {"created": "created", "last_update": "last_update", "name": "name", "id": "id"}


def get_model(call, model_id, *, public_too: bool = False) -> RegisteredModel:
    """A model the caller sees (400 "invalid model id" otherwise) and, for a model.write
    endpoint, may change: judged on its task, or without one, only its creator (and staff).
    A public model is read-only: clearml-server answers a write to one as to an unknown id
    (`public_too` is for models.make_private, which turns that back)."""
    model = visible_models(call).filter(pk=str(model_id or "")).first()
    if model is None or (model.public and call.verb == "model.write" and not public_too):
        raise ApiError(400, f"Invalid model id: id={model_id}", 201)
    if call.verb == "model.write":
        if model.task_id is not None:
            check_task(call, model.task)
        elif not _creator_writes(call, model):
            raise ApiError(403, f"this key may not change model {model.pk}", 21)
    return model


def _creator_writes(call, model: RegisteredModel) -> bool:
    """A model with no task yet is its creator's: a user's, or for a worker key, the owner's
    of a task it runs (the SDK creates a model empty, then links it to its task)."""
    if call.rule == policy.ANY:
        return True
    if call.rule == policy.TEAM:
        return model.created_by_id == call.user.pk
    if call.rule == policy.RUNS:
        owners = access.running_tasks(call.key).values_list("created_by", flat=True)
        return model.created_by_id is not None and model.created_by_id in set(owners)
    return False


def apply(call, model: RegisteredModel, body: dict) -> dict:
    fields = {}
    for field in EDITABLE:
        if body.get(field) is not None:
            value = body[field]
            if field == "metadata" and isinstance(value, list):
                value = {str(m.get("key")): m for m in value if isinstance(m, dict)}
            setattr(model, field, value)
            fields[field] = value
    for field in ("tags", "system_tags"):
        if body.get(field) is not None:
            setattr(model, field, [str(t) for t in as_list(body[field])])
            fields[field] = getattr(model, field)
    for field in ("ready", "public"):
        if body.get(field) is not None:
            setattr(model, field, bool(body[field]))
            fields[field] = getattr(model, field)
    if body.get("project"):
        model.project = get_project(call, body["project"], verb="project.edit")
        fields["project"] = model.project_id
    if body.get("task"):
        model.task = get_task(call, body["task"])
        fields["task"] = model.task_id
    model.last_update = timezone.now()
    model.save()
    return fields


@endpoint("models.get_all", "models.get_all_ex", verb="model.read")
def get_all(call):
    body = call.body
    queryset = visible_models(call)
    for field, column in (("id", "pk"), ("uri", "uri"), ("project", "project_id")):
        values = as_list(body.get(field))
        if values and field == "project" and call.flag("include_subprojects"):
            values = with_subprojects(values)
        if values:
            queryset = queryset.filter(**{f"{column}__in": [str(v) for v in values]})
    tasks = as_list(body.get("task"))
    if tasks:
        queryset = queryset.filter(task_id__in=[str(t) for t in tasks])
    queryset = name_filter(queryset, "name", body.get("name"))
    if body.get("ready") is not None:
        queryset = queryset.filter(ready=bool(body["ready"]))
    queryset = queryset.order_by(*order_fields(body.get("order_by"), ORDER, ["-created"]))
    docs = [model_doc(m) for m in queryset]
    for field in ("system_tags", "tags"):
        if body.get(field):
            docs = [d for d in docs if tags_match(d[field], body[field])]
    docs = docs[page_slice(body)]
    if call.name == "models.get_all_ex" and call.flag("include_stats"):
        for doc in docs:
            doc["stats"] = {"labels_count": len(doc["labels"])}
    return {"models": [project(doc, body.get("only_fields")) for doc in docs]}


@endpoint("models.get_by_id", verb="model.read")
def get_by_id(call):
    return {"model": model_doc(get_model(call, call.require("model")))}


@endpoint("models.create", verb="model.write")
def create(call):
    body = dict(call.body)
    creator = call.user
    if not body.get("task"):
        if call.rule == policy.OWN:
            # What a task key registers belongs to its task.
            body["task"] = call.key.task_id
        elif call.rule == policy.RUNS:
            # The SDK creates an empty model first: the run's owner's, in its project.
            project = (
                get_project(call, body["project"], verb="project.read")
                if body.get("project")
                else None
            )
            found = access.acting_owner(call.key, project)
            if found is None:
                raise ApiError(403, "a worker key registers models only for a task it runs", 21)
            creator = found[0]
    if body.get("ready") is None:
        body["ready"] = True  # clearml-server's default: a model is created final
    model = RegisteredModel(created_by=creator)
    apply(call, model, body)
    return {"id": model.id, "created": True}


def _iteration(call):
    value = call.body.get("iteration")
    return None if value is None else limits.to_integer("iteration", value)


@endpoint("models.edit", "models.update", verb="model.write")
def edit(call):
    model = get_model(call, call.require("model"))
    iteration = _iteration(call)
    fields = apply(call, model, call.body)
    if model.task_id is not None:
        # A model reported at an iteration moves its task's last iteration up.
        raise_iteration(model.task, iteration)
    return {"updated": 1, "fields": fields}


def publish_model(call, model: RegisteredModel, *, publish_task_too: bool, force: bool):
    """Mark `model` ready (400/203 if it is already); with `publish_task_too`, its task is
    published first, by the task's own rules (a running one only with `force`)."""
    if model.ready:
        raise ApiError(400, f"model is ready: {model.pk}", 203)
    published_task = None
    if publish_task_too and model.task_id is not None:
        task = get_task(call, model.task_id, verb="task.publish")
        if task.status != TaskStatus.PUBLISHED:
            published_task = {"id": task.pk, "data": publish_task(call, task, force=force)}
    apply(call, model, {"ready": True})
    return published_task


@endpoint("models.set_ready", verb="model.write")
def set_ready(call):
    model = get_model(call, call.require("model"))
    with transaction.atomic():
        published_task = publish_model(
            call,
            model,
            publish_task_too=call.flag("publish_task", True),
            force=call.flag("force_publish_task"),
        )
    return {"updated": 1, "published_task": published_task}


@endpoint("models.add_or_update_metadata", verb="model.write")
def add_or_update_metadata(call):
    model = get_model(call, call.require("model"))
    metadata = dict(model.metadata or {})
    for item in as_list(call.get("metadata")):
        if isinstance(item, dict) and item.get("key"):
            metadata[str(item["key"])] = item
    apply(call, model, {"metadata": metadata})
    return {"updated": 1}


@endpoint("models.delete_metadata", verb="model.write")
def delete_metadata(call):
    model = get_model(call, call.require("model"))
    keys = {str(k) for k in as_list(call.require("keys"))}
    metadata = {k: v for k, v in (model.metadata or {}).items() if k not in keys}
    apply(call, model, {"metadata": metadata})
    return {"updated": 1}


@endpoint("models.update_for_task", verb="model.write")
def update_for_task(call):
    """Create (or update) the output model of a task in one call (older SDK flows): a new
    one takes its framework, design and labels from the task's execution and its parent
    from the task's input model."""
    task = get_task(call, call.require("task"))
    if bool(call.get("uri")) == bool(call.get("override_model_id")):
        raise bad_request("exactly one of uri and override_model_id is required")
    if task.status not in (TaskStatus.CREATED, TaskStatus.IN_PROGRESS):
        raise ApiError(
            400, "Invalid task status: a model is updated only for a draft or running task", 110
        )
    iteration = _iteration(call)
    body = {**call.body, "task": task.id}
    with transaction.atomic():
        if call.get("override_model_id"):
            # Another model becomes the task's output as it is.
            model = get_model(call, call.body["override_model_id"])
            set_output_model(task, model)
            raise_iteration(task, iteration)
            return {"id": model.id, "created": True}
        body.setdefault("name", task.name)
        body.setdefault("comment", f"Created by task `{task.name}` ({task.id})")
        model = output_model(task)
        created = model is None
        if created:
            extra = extra_of(task)
            execution = extra.execution or {}
            inputs = model_ids(extra.task_models, "input")
            model = RegisteredModel(
                created_by=call.user,
                project=task.project,
                framework=str(execution.get("framework") or ""),
                design=execution.get("model_desc") or {},
                labels=execution.get("model_labels") or {},
                parent=inputs[0] if inputs else "",
            )
        fields = apply(call, model, body)
        if created:
            set_output_model(task, model)
        raise_iteration(task, iteration)
    if created:
        return {"id": model.id, "created": True}
    return {"id": model.id, "created": False, "updated": 1, "fields": fields}


@endpoint("models.delete", verb="model.write")
def delete(call):
    model = get_model(call, call.require("model"))
    with transaction.atomic():
        delete_model(model, call.flag("force"))
    return {"deleted": True, "url": model.uri}
