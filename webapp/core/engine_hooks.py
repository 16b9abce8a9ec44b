"""The seam between task status changes and the pipeline engine.

Other apps follow status changes through `add_status_listener` (the ClearML front door keeps
its mirrored pipeline runs up to date that way), so this core module imports none of them.
"""

import logging
from collections.abc import Callable

from django.db import connection, transaction

logger = logging.getLogger(__name__)

_status_listeners: list[Callable] = []


def add_status_listener(listener: Callable) -> None:
    """Call `listener(task)` after every task status change (idempotent registration).

    Listeners run inside the change's transaction: whatever they do after it must be put on
    `transaction.on_commit`, and they must not raise.
    """
    if listener not in _status_listeners:
        _status_listeners.append(listener)


def task_status_changed(task) -> None:
    """After commit, ask the engine to advance the pipeline this task is a step of."""
    from .choices import PipelineDriver, TaskStatus

    for listener in _status_listeners:
        try:
            listener(task)
        except Exception:  # noqa: BLE001 - a listener must never undo a status change
            logger.exception("status listener %r failed for task %s", listener, task.pk)
    if task.status == TaskStatus.QUEUED:
        return  # the engine (or a user) enqueued it; nothing for the engine to decide
    # Every claim and every report of a task asks this, nearly always of a task in no run:
    # written out, since the ORM spent twenty times longer building the query than running it.
    with connection.cursor() as cursor:
        # Mirrored runs are driven by their ClearML controller, not by the engine.
        cursor.execute(_runs_of_task_sql(), {"task": task.pk, "mirrored": PipelineDriver.CLEARML})
        run_ids = [run_id for (run_id,) in cursor.fetchall()]
    status = task.status
    for run_id in run_ids:
        transaction.on_commit(lambda run_id=run_id: _advance_soon(run_id, task.pk, status))


def _runs_of_task_sql() -> str:
    from . import sql
    from .models import PipelineNode, PipelineRun

    tables = (("node", PipelineNode), ("run", PipelineRun))
    return sql.statement(_RUNS_OF_TASK, tables, ("id", "run_id", "task_id", "driver"))


_RUNS_OF_TASK = """
    SELECT node.{run_id} FROM {node} node INNER JOIN {run} run ON node.{run_id} = run.{id}
    WHERE node.{task_id} = %(task)s AND run.{driver} <> %(mirrored)s
"""


def stop_mirrored_run(run, reason: str):
    """Stopping a run mirrored from a ClearML controller stops that controller and the steps
    it has running, as ClearML's `tasks.stop` with `include_pipeline_steps` does; the mirror
    then follows their statuses. Nothing is skipped or relaunched here."""
    from . import services
    from .choices import TaskStatus
    from .errors import Conflict
    from .models import Task

    active = (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS)
    controller = Task.objects.get(pk=run.controller_id)
    for task in [controller, *Task.objects.filter(parent=controller, status__in=active)]:
        if task.status in active:
            try:
                services.abort_task(task, reason)
            except Conflict:
                pass  # it ended meanwhile
    return run


def _advance_soon(run_id: str, task_id: str | None = None, task_status: str | None = None) -> None:
    try:
        from .tasks import advance_pipeline

        advance_pipeline.delay(run_id, task_id, task_status)
    except Exception:  # noqa: BLE001 - the periodic sweep advances it anyway
        logger.warning("could not schedule the engine for run %s", run_id, exc_info=True)
