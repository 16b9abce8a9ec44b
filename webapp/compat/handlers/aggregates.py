"""Reads across many tasks or models, over what the caller sees: the tags in use
(projects.get_task_tags, organization.get_tags ...), the parents of tasks, the values of a
parameter, models' metadata keys and frameworks; and adding or removing tags on many tasks
or models at once."""

import re

from django.db.models import Q
from django.utils import timezone

from webapp.core import access, limits, services
from webapp.core.models import Project

from ..documents import get_task, project_extra_of, visible_tasks
from ..query import as_list, checked_regex, tags_match
from ..registry import endpoint
from .auth import COMPANY, user_doc
from .models import get_model, visible_models


def _in_projects(queryset, call):
    projects = [str(p) for p in as_list(call.body.get("projects"))]
    return queryset.filter(project_id__in=projects) if projects else queryset


def _collect(rows, call) -> dict:
    """The tags (and, with include_system, system tags) of rows passing `filter`."""
    wanted = call.body.get("filter") or {}
    tags, system_tags = set(), set()
    for row_tags, row_system_tags in rows:
        if wanted.get("tags") and not tags_match(row_tags, wanted["tags"]):
            continue
        if wanted.get("system_tags") and not tags_match(row_system_tags, wanted["system_tags"]):
            continue
        tags.update(row_tags or [])
        system_tags.update(row_system_tags or [])
    answer = {"tags": sorted(tags)}
    if call.flag("include_system"):
        answer["system_tags"] = sorted(system_tags)
    return answer


def _task_rows(call):
    tasks = _in_projects(visible_tasks(call), call)
    return [
        (tags, [t for t in system_tags or [] if t != "clearml"] + ["archived"] * archived)
        for tags, system_tags, archived in tasks.values_list("tags", "system_tags", "archived")
    ]


def _model_rows(call):
    return list(_in_projects(visible_models(call), call).values_list("tags", "system_tags"))


@endpoint("projects.get_task_tags", verb="task.read")
def task_tags(call):
    return _collect(_task_rows(call), call)


@endpoint("projects.get_model_tags", verb="model.read")
def model_tags(call):
    return _collect(_model_rows(call), call)


@endpoint("organization.get_tags", verb="task.read")
def organization_tags(call):
    return _collect(_task_rows(call) + _model_rows(call), call)


@endpoint("projects.get_project_tags", verb="project.read")
def project_tags(call):
    projects = access.visible_projects(call.user, call.key).select_related("clearml")
    ids = [str(p) for p in as_list(call.body.get("projects"))]
    if ids:
        projects = projects.filter(pk__in=ids)
    rows = []
    for row in projects:
        extra = project_extra_of(row)
        rows.append((extra.tags or [], extra.system_tags or []))
    return _collect(rows, call)


@endpoint("projects.get_task_parents", verb="task.read")
def task_parents(call):
    """The tasks that have children among the caller's tasks of these projects."""
    children = _in_projects(visible_tasks(call), call).exclude(parent=None)
    state = call.get("tasks_state")
    if state == "active":
        children = children.filter(archived=False)
    elif state == "archived":
        children = children.filter(archived=True)
    parents = visible_tasks(call).filter(pk__in=children.values("parent_id"))
    if call.get("task_name"):
        parents = parents.filter(name__iregex=checked_regex(str(call.body["task_name"])))
    answer = []
    for parent in parents.select_related("project").order_by("name"):
        doc = {"id": parent.id, "name": parent.name}
        if parent.project_id is not None:
            doc["project"] = {"id": parent.project_id, "name": parent.project.name}
        answer.append(doc)
    return {"parents": answer}


@endpoint("organization.get_user_companies", verb="identity.read")
def user_companies(call):
    return {"companies": [{**COMPANY, "allocated": 1, "owners": [user_doc(call.user)]}]}


def _retagged(tags, call) -> list[str]:
    removed = {str(t) for t in as_list(call.body.get("remove_tags"))}
    kept = [t for t in tags or [] if t not in removed]
    added = [str(t) for t in as_list(call.body.get("add_tags")) if str(t) not in kept]
    return kept + added


@endpoint("tasks.update_tags", verb="task.edit")
def update_task_tags(call):
    ids = [str(i) for i in as_list(call.require("ids"))]
    for task_id in ids:
        task = get_task(call, task_id)
        services.edit_task(task, {"tags": _retagged(task.tags, call)}, force=True)
    return {"updated": len(ids)}


@endpoint("models.update_tags", verb="model.write")
def update_model_tags(call):
    ids = [str(i) for i in as_list(call.require("ids"))]
    for model_id in ids:
        model = get_model(call, model_id)
        model.tags = limits.tags("tags", _retagged(model.tags, call))
        model.last_update = timezone.now()
        model.save(update_fields=["tags", "last_update"])
    return {"updated": len(ids)}


@endpoint("projects.get_model_metadata_keys", verb="model.read")
def model_metadata_keys(call):
    models = visible_models(call)
    if call.get("project"):
        project = str(call.body["project"])
        if call.flag("include_subprojects", True):
            names = Project.objects.filter(pk=project).values_list("name", flat=True)
            prefix = f"{names[0]}/" if names else "\0"
            models = models.filter(Q(project_id=project) | Q(project__name__startswith=prefix))
        else:
            models = models.filter(project_id=project)
    elif not call.flag("include_subprojects", True):
        models = models.filter(project=None)  # the root: models in no project
    keys = sorted({key for row in models.values_list("metadata", flat=True) for key in row or {}})
    return {"keys": keys, "total": len(keys), "remaining": 0}


@endpoint("projects.get_model_metadata_values", verb="model.read")
def model_metadata_values(call):
    key = str(call.require("key"))
    values = sorted(
        {
            str((row or {})[key].get("value"))
            for row in visible_models(call).values_list("metadata", flat=True)
            if isinstance((row or {}).get(key), dict)
        }
    )
    return {"values": values, "total": len(values), "remaining": 0}


@endpoint("models.get_frameworks", verb="model.read")
def model_frameworks(call):
    models = _in_projects(visible_models(call), call).exclude(framework="")
    return {"frameworks": sorted(set(models.values_list("framework", flat=True)))}


@endpoint("projects.get_hyperparam_values", verb="task.read")
def hyperparam_values(call):
    """The distinct values one parameter has among the caller's tasks of these projects."""
    section, name = str(call.require("section")), str(call.require("name"))
    pattern = call.get("pattern")
    matcher = re.compile(checked_regex(str(pattern)), re.IGNORECASE) if pattern else None
    values = set()
    rows = _in_projects(visible_tasks(call), call).values_list("hyperparameters", flat=True)
    for parameters in rows:
        entry = ((parameters or {}).get(section) or {}).get(name)
        if isinstance(entry, dict) and entry.get("value") is not None:
            value = str(entry["value"])
            if matcher is None or matcher.search(value):
                values.add(value)
    ordered = sorted(values)
    return {"total": len(ordered), "values": ordered}
