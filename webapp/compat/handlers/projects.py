"""projects.*: our Project rows; ClearML's system tags (`hidden`, `pipeline`) in ProjectExtra."""

from django.db import transaction

from webapp.core import access, limits, services

from ..documents import check_project, get_project, project_doc, project_extra_of
from ..envelope import bad_request
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
