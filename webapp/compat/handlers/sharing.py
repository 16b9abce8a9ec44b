"""tasks.make_public / make_private and models.make_public / make_private.

On clearml-server a public object leaves its company: every company reads it and none
changes it until its own company makes it private again. Our teams are its companies, and
who sees what is the permission table's alone (webapp/core/policy.py), so here a public
task or model stays visible to whoever saw it before and no one else; what it gains is
clearml-server's freeze: no write through the ClearML door reaches it (documents.py,
`check_task`, and models.get_model) until it is made private. Only a caller that may
change the object may make it public or private again.
"""

from webapp.core import access

from ..documents import extra_of, visible_tasks
from ..envelope import ApiError
from ..query import as_list
from ..registry import endpoint
from .models import get_model


def _ids(call) -> list[str]:
    return list(dict.fromkeys(str(i) for i in as_list(call.require("ids"))))


def _share_tasks(call, public: bool) -> dict:
    ids = _ids(call)
    tasks = list(visible_tasks(call).filter(pk__in=ids).select_related("clearml"))
    unknown = sorted(set(ids) - {t.pk for t in tasks})
    if unknown:
        raise ApiError(400, f"Invalid task id: ids={unknown}", 101)
    for task in tasks:
        if not access.permits(call.rule, call.user, call.key, task):
            raise ApiError(403, f"this key may not change task {task.pk}", 21)
    # As clearml-server: one that is already so fails the whole call, as an unknown id.
    unchanged = sorted(t.pk for t in tasks if extra_of(t).public == public)
    if unchanged:
        raise ApiError(400, f"Invalid task id: ids={unchanged}", 101)
    for task in tasks:
        extra = extra_of(task)
        extra.public = public
        extra.save()
    return {"updated": len(tasks)}


@endpoint("tasks.make_public", verb="task.edit")
def make_tasks_public(call):
    return _share_tasks(call, public=True)


@endpoint("tasks.make_private", verb="task.edit")
def make_tasks_private(call):
    return _share_tasks(call, public=False)


def _share_models(call, public: bool) -> dict:
    models = [get_model(call, model_id, public_too=True) for model_id in _ids(call)]
    unchanged = sorted(m.pk for m in models if m.public == public)
    if unchanged:
        raise ApiError(400, f"Invalid model id: ids={unchanged}", 201)
    for model in models:
        model.public = public
        model.save(update_fields=["public"])
    return {"updated": len(models)}


@endpoint("models.make_public", verb="model.write")
def make_models_public(call):
    return _share_models(call, public=True)


@endpoint("models.make_private", verb="model.write")
def make_models_private(call):
    return _share_models(call, public=False)
