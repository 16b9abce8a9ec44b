"""models.*: the model registry the SDK records trained weights in (RegisteredModel)."""

from django.db.models import Q
from django.utils import timezone

from webapp.core import access, policy

from ..documents import check_task, get_project, get_task, model_doc
from ..envelope import ApiError
from ..models import RegisteredModel
from ..query import as_list, name_filter, order_fields, page_slice, project, tags_match
from ..registry import endpoint
from .projects import with_subprojects

EDITABLE = ("name", "uri", "framework", "comment", "design", "labels", "parent", "metadata")
ORDER = {"created": "created", "last_update": "last_update", "name": "name", "id": "id"}


def visible_models(call):
    if access.sees_everything(call.user, call.key):
        return RegisteredModel.objects.all()
    tasks = access.visible_tasks(call.user, call.key)
    return RegisteredModel.objects.filter(Q(created_by=call.user) | Q(task__in=tasks))


def get_model(call, model_id) -> RegisteredModel:
    """A model the caller sees (400 "invalid model id" otherwise) and, for a model.write
    endpoint, may change: judged on its task, or without one, only its creator (and staff)."""
    model = visible_models(call).filter(pk=str(model_id or "")).first()
    if model is None:
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
    model = RegisteredModel(created_by=creator)
    apply(call, model, body)
    return {"id": model.id, "created": True}


@endpoint("models.edit", "models.update", verb="model.write")
def edit(call):
    model = get_model(call, call.require("model"))
    return {"updated": 1, "fields": apply(call, model, call.body)}


@endpoint("models.set_ready", verb="model.write")
def set_ready(call):
    model = get_model(call, call.require("model"))
    apply(call, model, {"ready": True})
    return {"updated": 1, "published_task": None}


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
    """Create (or update) the output model of a task in one call (older SDK flows)."""
    task = get_task(call, call.require("task"))
    model = None
    if call.get("override_model_id"):
        model = get_model(call, call.body["override_model_id"])
    created = model is None
    model = model or RegisteredModel(created_by=call.user, project=task.project)
    apply(call, model, {**call.body, "task": task.id})
    return {"id": model.id, "created": created, "updated": 0 if created else 1}


@endpoint("models.delete", verb="model.write")
def delete(call):
    model = get_model(call, call.require("model"))
    model.delete()
    return {"deleted": True}
