"""Moving tasks and models to another project: tasks.edit's `project`, tasks.move and
models.move. A task always has a project here, so moving one to ClearML's root (no project
at all) is refused."""

from django.db import transaction
from django.utils import timezone

from webapp.core import access, policy, project_verbs
from webapp.core.models import Task

from ..documents import get_project, get_task
from ..envelope import ApiError, bad_request
from ..query import as_list
from ..registry import endpoint
from .models import get_model
from .projects import ensure_project


def move_to_project(call, task: Task, project_id) -> Task:
    """`task` put in the project `project_id`, which the caller must be allowed to change
    (adding a task changes who sees it: the project's team)."""
    if not isinstance(project_id, str) or not project_id:
        raise bad_request("project must be a project id", subcode=12)
    target = get_project(call, project_id, verb="project.edit")
    return project_verbs.move_task(task, target)


def _target(call):
    """The project a move names: by id, or by name (created, with its parents, if new)."""
    if call.body.get("project_name"):
        name = str(call.body["project_name"])
        rule = policy.rule_for("project.create", call.user, call.key)
        owner = access.project_owner(rule, call.user, call.key, name)
        return ensure_project(name, owner)
    if call.body.get("project"):
        return get_project(call, call.body["project"], verb="project.edit")
    raise ApiError(
        400, "project or project_name is required: every task and model has a project here", 12
    )


@endpoint("tasks.move", verb="task.edit")
def move_tasks(call):
    ids = [str(i) for i in as_list(call.require("ids"))]
    with transaction.atomic():
        tasks = [get_task(call, task_id) for task_id in ids]
        target = _target(call)
        for task in tasks:
            move_to_project(call, task, target.pk)
    return {"project_id": target.pk}


@endpoint("models.move", verb="model.write")
def move_models(call):
    ids = [str(i) for i in as_list(call.require("ids"))]
    with transaction.atomic():
        models = [get_model(call, model_id) for model_id in ids]
        target = _target(call)
        for model in models:
            model.project, model.last_update = target, timezone.now()
            model.save(update_fields=["project", "last_update"])
    return {"project_id": target.pk}
