"""tasks.* parameters and configuration items, and a project's parameter names.

As on clearml-server, a task's parameters change only while it is a draft, unless `force`;
the `properties` section (the SDK's user properties) changes in any state. Lists are sorted
by section and name, as clearml-server answers them.
"""

import copy

from django.db import transaction

from webapp.core import access, presenters, services
from webapp.core.models import Task

from .. import mirror
from ..convert import (
    configuration_to_clearml,
    configuration_to_ours,
    hyperparams_to_clearml,
    hyperparams_to_ours,
)
from ..documents import extra_of, get_project, get_task, visible_tasks
from ..envelope import bad_request
from ..query import as_list, page_slice
from ..registry import endpoint
from .tasks import check_editable

PROPERTIES = "properties"


def _items(call, field: str) -> list[dict]:
    items = as_list(call.get(field))
    if not all(isinstance(item, dict) for item in items):
        raise bad_request(f"{field} must be a list of objects", subcode=12)
    for item in items:
        # ClearML's user properties section, whatever its case.
        if str(item.get("section") or "").lower() == PROPERTIES:
            item["section"] = PROPERTIES
    return items


def _check_status(task: Task, items: list[dict], force: bool) -> None:
    if not items or any(item.get("section") != PROPERTIES for item in items):
        check_editable(task, force)


@endpoint("tasks.edit_hyper_params", verb="task.edit")
def edit_hyper_params(call):
    task = get_task(call, call.require("task"))
    items = _items(call, "hyperparams")
    _check_status(task, items, call.flag("force"))
    replace = str(call.get("replace_hyperparams", "none"))
    params = {} if replace == "all" else copy.deepcopy(task.hyperparameters)
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
    items = _items(call, "hyperparams")
    _check_status(task, items, call.flag("force"))
    params = copy.deepcopy(task.hyperparameters)
    for item in items:
        section = str(item.get("section") or "General")
        if item.get("name"):
            params.get(section, {}).pop(str(item["name"]), None)
        else:
            params.pop(section, None)
    services.edit_task(task, {"hyperparameters": params}, force=True)
    return {"deleted": 1}


@endpoint("tasks.get_hyper_params", verb="task.read")
def get_hyper_params(call):
    result = []
    for task in _listed(call, "tasks"):
        items = [
            entry
            for section in hyperparams_to_clearml(_reading(call, task).hyperparameters).values()
            for entry in section.values()
        ]
        items.sort(key=lambda entry: (entry["section"], entry["name"]))
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
    check_editable(task, call.flag("force"))
    config = {} if call.flag("replace_configuration") else copy.deepcopy(task.configuration)
    for item in _items(call, "configuration"):
        if item.get("name"):
            config.update(configuration_to_ours({str(item["name"]): item}))
    with transaction.atomic():
        task = services.edit_task(task, {"configuration": config}, force=True)
        mirror.configuration_written(task, config)
    return {"updated": 1}


@endpoint("tasks.delete_configuration", verb="task.edit")
def delete_configuration(call):
    task = get_task(call, call.require("task"))
    check_editable(task, call.flag("force"))
    names = {str(name) for name in as_list(call.require("configuration"))}
    config = {k: v for k, v in task.configuration.items() if k not in names}
    deleted = len(task.configuration) - len(config)
    with transaction.atomic():
        task = services.edit_task(task, {"configuration": config}, force=True)
        mirror.configuration_written(task, config)
    return {"deleted": deleted}


@endpoint("tasks.get_configurations", verb="task.read")
def get_configurations(call):
    names = {str(n) for n in as_list(call.get("names"))}
    result = []
    for task in _listed(call, "tasks"):
        configuration = configuration_to_clearml(_reading(call, task).configuration)
        items = [item for name, item in sorted(configuration.items()) if not names or name in names]
        result.append({"task": task.id, "configuration": items})
    return {"configurations": result}


@endpoint("tasks.get_configuration_names", verb="task.read")
def get_configuration_names(call):
    skip_empty = call.flag("skip_empty", True)
    tasks = visible_tasks(call).filter(pk__in=[str(t) for t in as_list(call.get("tasks"))])
    return {
        "configurations": [
            {
                "task": task.id,
                "names": sorted(
                    name
                    for name, item in task.configuration.items()
                    if not skip_empty or (item or {}).get("value") not in (None, "")
                ),
            }
            for task in tasks
        ]
    }


@endpoint("projects.get_hyper_parameters", verb="task.read")
def project_hyper_parameters(call):
    """The distinct (section, name) of the parameters of the caller's tasks in a project
    (and its subprojects, unless `include_subprojects` is false), a page of them."""
    tasks = visible_tasks(call)
    if call.body.get("project"):
        root = get_project(call, call.body["project"], verb="project.read")
        projects = [root.pk]
        if call.flag("include_subprojects", True):
            projects += list(
                access.visible_projects(call.user, call.key)
                .filter(name__startswith=f"{root.name}/")
                .values_list("pk", flat=True)
            )
        tasks = tasks.filter(project_id__in=projects)
    keys = {
        (str(section), str(name))
        for parameters in tasks.values_list("hyperparameters", flat=True)
        for section, entries in (parameters or {}).items()
        for name in (entries or {})
    }
    ordered = sorted(keys)
    window = page_slice({"page": call.get("page", 0), "page_size": call.get("page_size", 500)})
    page = ordered[window]
    return {
        "total": len(ordered),
        "remaining": max(0, len(ordered) - (window.start + len(page))),
        "parameters": [{"section": section, "name": name} for section, name in page],
    }
