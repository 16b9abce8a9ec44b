"""projects.*: our Project rows; ClearML's system tags (`hidden`, `pipeline`) in ProjectExtra."""

from django.db import transaction
from django.db.models import Q

from webapp.core import access, limits, project_verbs, services
from webapp.core.errors import Conflict
from webapp.core.models import Project, Task

from ..documents import check_project, get_project, project_doc, project_extra_of
from ..envelope import ApiError, bad_request
from ..models import RegisteredModel
from ..query import as_list
from ..registry import endpoint


def project_name(value) -> str:
    """A project's full name as ClearML takes it: `a/b/c`, no empty part (400/407)."""
    name = (value if isinstance(value, str) else "").strip().strip("/")
    if not name or any(not part.strip() for part in name.split("/")):
        raise bad_request(f"invalid project name {value!r}", subcode=407)
    return name


def ensure_project(name: str, user, description: str = ""):
    """Create `a/b/c` and, as ClearML does implicitly, its parents `a` and `a/b`."""
    name = project_name(name)
    parts = name.split("/")
    for depth in range(1, len(parts)):
        services.get_or_create_project("/".join(parts[:depth]), user)
    created = services.get_or_create_project(name, user)
    if description and not created.description:
        created = services.describe_project(
            created, limits.text("description", str(description), limits.DESCRIPTION_MAX)
        )
    return created


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


def with_subprojects(ids) -> list[str]:
    """These projects' ids and those of every project under them (`a` and `a/...`): what a
    query with `include_subprojects` covers. Who sees what is the query's own filter."""
    ids = [str(i) for i in ids]
    under = Q(pk__in=ids)
    for name in Project.objects.filter(pk__in=ids).values_list("name", flat=True):
        under |= Q(name__startswith=f"{name}/")
    return list(Project.objects.filter(under).values_list("pk", flat=True))


def refuse_taken(name: str, user) -> None:
    """clearml-server's 400/801 for a name in use; one the caller may not see answers as
    taken by another team (access.check_project_access), revealing nothing else."""
    existing = Project.objects.filter(name=name).first()
    if existing is not None:
        access.check_project_access(existing, user)
        raise ApiError(400, f"a project named {name!r} exists already", 801)


@endpoint("projects.create", verb="project.create")
def create(call):
    name = project_name(call.require("name"))
    owner = access.project_owner(call.rule, call.user, call.key, name)
    with transaction.atomic():
        refuse_taken(name, owner)
        created = ensure_project(name, owner, call.get("description", ""))
        save_extra(created, call.body)
    return {"id": created.id}


@endpoint("projects.get_by_id", verb="project.read")
def get_by_id(call):
    target = get_project(call, call.require("project"))
    head = target.name.rpartition("/")[0]
    parent = (
        Project.objects.filter(name=head).values_list("pk", flat=True).first() if head else None
    )
    return {"project": {**project_doc(target), "parent": parent}}


def rename(call, target: Project, new_name) -> Project:
    """projects.update's `name`: a new base name in the same place, as clearml-server allows
    (moving a project elsewhere is projects.move there: 400/408 here)."""
    name = project_name(new_name)
    if name == target.name:
        return target
    if name.rpartition("/")[0] != target.name.rpartition("/")[0]:
        raise ApiError(400, "cannot change a project's location through its name", 408)
    refuse_taken(name, call.user)
    try:
        project_verbs.rename_project(target, name)
    except Conflict as error:
        raise ApiError(400, error.message, 801) from error
    return target


@endpoint("projects.update", verb="project.edit")
def update(call):
    target = get_project(call, call.require("project"))
    fields = {}
    if call.body.get("name") is not None:
        target = rename(call, target, call.body["name"])
        fields["name"] = target.name
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
