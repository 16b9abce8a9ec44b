"""tasks.validate: would tasks.create accept this task? It answers as tasks.create would,
who may create it included, and makes nothing.

Clients send a whole task document (an edited copy of one they read), so the fields only
a stored task has (id, status, dates) are ignored, as clearml-server ignores them."""

from webapp.core import access

from ..documents import get_project, get_task
from ..envelope import bad_request
from ..registry import endpoint
from ..task_models import DELETED, check_models_exist, legacy_models, model_ids
from .tasks import definition_changes


@endpoint("tasks.validate", verb="task.create")
def validate(call):
    body = legacy_models(call, call.body)
    if len(str(call.require("name")).strip()) < 3:
        raise bad_request("task name must be at least 3 characters long")
    target = (
        get_project(call, body["project"], verb="project.read") if body.get("project") else None
    )
    parent = body.get("parent")
    # A parent deleted since is named `__DELETED__<id>` by clearml-server; ours have none.
    parent = (
        get_task(call, parent, verb="task.read")
        if parent and not str(parent).startswith(DELETED)
        else None
    )
    access.new_task_for(call.rule, call.user, call.key, parent=parent, project=target)
    definition_changes(None, body)
    check_models_exist(call, model_ids(body.get("models"), "input"))
    return {}
