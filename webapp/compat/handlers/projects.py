"""projects.*: our Project rows; ClearML's system tags (`hidden`, `pipeline`) in ProjectExtra."""

from django.db import transaction

from webapp.core import access, limits, services
from webapp.core.models import Task

from ..documents import check_project, get_project, project_doc, project_extra_of
from ..envelope import ApiError, bad_request
from ..models import RegisteredModel
from ..query import as_list, name_filter, order_fields, page_slice, project, tags_match
from ..registry import endpoint

ORDER = {"name": "name", "created": "created", "last_update": "created", "id": "id"}


def ensure_project(name: str, user, description: str = ""):
    """Create `a/b/c` and, as ClearML does implicitly, its parents `a` and `a/b`."""
    name = (name or "").strip().strip("/")
    if not name:
        raise bad_request("project name must not be empty")
    parts = name.split("/")
    for depth in range(1, len(parts)):
        services.get_or_create_project("/".join(parts[:depth]), user)
    created = services.get_or_create_project(name, user)
    if description and not created.description:
        created = services.describe_project(
            created, limits.text("description", str(description), limits.DESCRIPTION_MAX)
        )
    return created


EXTRA_FIELDS = ("tags", "system_tags", "default_output_destination")


def save_extra(target, body: dict) -> None:
    extra = project_extra_of(target)
    changed = False
    for field in ("tags", "system_tags"):
        if field in body and body[field] is not None:
            setattr(extra, field, limits.tags(field, [str(t) for t in as_list(body[field])]))
            changed = True
    if body.get("default_output_destination") is not None:
        extra.default_output_destination = limits.text(
            "default_output_destination", str(body["default_output_destination"] or ""), 1024
        )
        changed = True
    if changed:
        extra.save()


@endpoint("projects.get_all", "projects.get_all_ex", verb="project.read")
def get_all(call):
    body = call.body
    queryset = access.visible_projects(call.user, call.key).select_related("clearml")
    ids = as_list(body.get("id"))
    if ids:
        queryset = queryset.filter(pk__in=[str(i) for i in ids])
    queryset = name_filter(queryset, "name", body.get("name"))
    if body.get("basename"):
        queryset = queryset.filter(name__iregex=rf"(^|/){body['basename']}$")
    queryset = queryset.order_by(*order_fields(body.get("order_by"), ORDER, ["name"]))
    search_hidden = call.flag("search_hidden")
    docs = []
    for row in queryset:
        doc = project_doc(row)
        if not search_hidden and "hidden" in doc["system_tags"] and not ids:
            continue
        if body.get("system_tags") and not tags_match(doc["system_tags"], body["system_tags"]):
            continue
        if body.get("tags") and not tags_match(doc["tags"], body["tags"]):
            continue
        if call.flag("shallow_search") and not body.get("name") and "/" in doc["name"]:
            continue
        docs.append(doc)
    docs = docs[page_slice(body)]
    return {"projects": [project(doc, body.get("only_fields")) for doc in docs]}


@endpoint("projects.create", verb="project.create")
def create(call):
    name = str(call.require("name"))
    owner = access.project_owner(call.rule, call.user, call.key, name)
    with transaction.atomic():
        created = ensure_project(name, owner, call.get("description", ""))
        if any(call.body.get(field) is not None for field in EXTRA_FIELDS):
            # Naming an existing project with new tags changes that project.
            check_project(call, created, verb="project.edit")
        save_extra(created, call.body)
    return {"id": created.id}


@endpoint("projects.get_by_id", verb="project.read")
def get_by_id(call):
    return {"project": project_doc(get_project(call, call.require("project")))}


@endpoint("projects.update", verb="project.edit")
def update(call):
    target = get_project(call, call.require("project"))
    fields = {}
    if call.body.get("description") is not None:
        target = services.describe_project(target, str(call.body["description"]))
        fields["description"] = target.description
    save_extra(target, call.body)
    for field in ("tags", "system_tags", "default_output_destination"):
        if call.body.get(field) is not None:
            fields[field] = call.body[field]
    return {"updated": 1, "fields": fields}


def _subtree(call, project):
    """The project and its subprojects (`a` and `a/...`) that the caller sees."""
    visible = access.visible_projects(call.user, call.key).select_related("clearml")
    return [project, *visible.filter(name__startswith=f"{project.name}/")]


def _contents(call, projects) -> dict:
    """clearml-server's counts of what would stop a project's deletion."""
    ids = [p.pk for p in projects]
    tasks = Task.objects.filter(project_id__in=ids)
    models = RegisteredModel.objects.filter(project_id__in=ids)
    tagged = {p.pk: set(project_doc(p)["system_tags"]) for p in projects}
    datasets = [pk for pk, tags in tagged.items() if "dataset" in tags]
    pipelines = [pk for pk, tags in tagged.items() if "pipeline" in tags]
    return {
        "tasks": tasks.count(),
        "non_archived_tasks": tasks.filter(archived=False).count(),
        "models": models.count(),
        "non_archived_models": sum(
            "archived" not in (m.system_tags or []) for m in models.only("system_tags")
        ),
        "reports": 0,
        "non_archived_reports": 0,
        "datasets": len(set(tasks.filter(project_id__in=datasets).values_list("project_id"))),
        "pipelines": len(
            set(tasks.filter(project_id__in=pipelines, archived=False).values_list("project_id"))
        ),
    }


@endpoint("projects.validate_delete", verb="project.read")
def validate_delete(call):
    return _contents(call, _subtree(call, get_project(call, call.require("project"))))


@endpoint("projects.delete", verb="project.delete")
def delete(call):
    """Delete a project and its subprojects once they hold nothing. clearml-server can also
    leave a project's tasks without one or delete them with it (`force`, `delete_contents`);
    here a task always has a project, and deleting a project never deletes work."""
    projects = _subtree(call, get_project(call, call.require("project")))
    for row in projects:
        check_project(call, row)
    counts = _contents(call, projects)
    for field, subcode, what in (
        ("pipelines", 413, "pipelines with active controllers"),
        ("datasets", 406, "non-empty datasets"),
        ("tasks", 402, "tasks"),
        # Archived models are left without a project, as clearml-server leaves them.
        ("non_archived_models", 405, "models"),
    ):
        if counts[field]:
            raise ApiError(
                400, f"project has associated {what}: delete or move them first", subcode
            )
    deleted = services.delete_empty_projects(projects)
    return {
        "deleted": int(bool(deleted)),
        "disassociated_tasks": 0,
        "deleted_tasks": 0,
        "deleted_models": 0,
        "urls": {"model_urls": [], "event_urls": [], "artifact_urls": []},
    }
