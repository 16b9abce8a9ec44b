"""tasks.*_many and archiving: one endpoint applied to many tasks, each on its own (one
task refused, missing or in the wrong state does not stop the others), answered as
clearml-server does with `succeeded` and `failed` lists."""

from dataclasses import replace

from django.db import transaction

from webapp.core import policy, services
from webapp.core.choices import TaskStatus
from webapp.core.errors import Conflict, DomainError, NotFound

from ..documents import get_task
from ..envelope import ApiError
from ..query import as_list
from ..registry import endpoint
from ..status import change_status
from . import task_removal, task_status


def _error(error) -> dict:
    if isinstance(error, ApiError):
        return {"codes": [error.code, error.subcode], "msg": error.message}
    if isinstance(error, NotFound):
        return {"codes": [400, 101], "msg": error.message}
    if isinstance(error, policy.Forbidden):
        return {"codes": [403, 21], "msg": error.message}
    if isinstance(error, Conflict):
        return {"codes": [400, 110], "msg": error.message}
    return {"codes": [error.status_code, 0], "msg": error.message}


def each(call, handler, ids=None, field: str = "task") -> dict:
    """`handler` called once per id, as if `field` named that one id."""
    succeeded, failed = [], []
    for task_id in ids if ids is not None else as_list(call.require("ids")):
        one = replace(call, body={**call.body, field: str(task_id)})
        try:
            with transaction.atomic():
                result = handler(one)
        except (ApiError, DomainError, policy.Forbidden) as error:
            failed.append({"id": str(task_id), "error": _error(error)})
            continue
        succeeded.append({"id": str(task_id), **(result or {})})
    return {"succeeded": succeeded, "failed": failed}


@endpoint("tasks.enqueue_many", verb="task.queue")
def enqueue_many(call):
    return each(call, task_status.enqueue)


@endpoint("tasks.dequeue_many", verb="task.queue")
def dequeue_many(call):
    return each(call, task_status.dequeue)


@endpoint("tasks.stop_many", verb="task.abort")
def stop_many(call):
    return each(call, task_status.stop)


@endpoint("tasks.reset_many", verb="task.reset")
def reset_many(call):
    return each(call, task_status.reset)


@endpoint("tasks.publish_many", verb="task.publish")
def publish_many(call):
    return each(call, task_status.publish)


@endpoint("tasks.delete_many", verb="task.delete")
def delete_many(call):
    return each(call, task_removal.delete)


def _archiving(call, archive: bool) -> dict:
    def one(single):
        task = get_task(single, single.body["task"])
        targets = [task]
        if single.flag("include_pipeline_steps"):
            targets += list(task_removal.pipeline_steps(single, task))
        for target in targets:
            if archive and target.status == TaskStatus.QUEUED:
                # As clearml-server: an archived task leaves its queue.
                target = services.dequeue_task(target)
            (services.archive_task if archive else services.restore_task)(target)
            if single.body.get("status_message") or single.body.get("status_reason"):
                target.refresh_from_db()
                change_status(
                    target,
                    target.status,
                    reason=str(single.get("status_reason", target.status_reason)),
                    message=str(single.get("status_message", "")),
                )
        return {}

    ids = as_list(call.get("tasks") or call.get("ids") or call.get("task"))
    return each(call, one, ids)


@endpoint("tasks.archive", "tasks.archive_many", verb="task.edit")
def archive(call):
    result = _archiving(call, archive=True)
    if call.name == "tasks.archive" and result["failed"]:
        # The single form answers its first refusal, as before there was a batch form.
        error = result["failed"][0]["error"]
        raise ApiError(error["codes"][0], error["msg"], error["codes"][1])
    return {"archived": len(result["succeeded"]), **result}


@endpoint("tasks.unarchive_many", verb="task.edit")
def unarchive_many(call):
    result = _archiving(call, archive=False)
    return {"unarchived": len(result["succeeded"]), **result}
