"""Task status changes -> the engine: the listener core's AppConfig registers."""

from django.db import connection, transaction

from .. import sql
from ..choices import PipelineDriver, TaskStatus
from . import _jobs


def on_task_status_changed(task) -> None:
    """After commit, ask the engine to advance the runs this task is a step of."""
    if task.status == TaskStatus.QUEUED:
        return  # the engine (or a user) enqueued it; nothing for the engine to decide
    # Mirrored runs are driven by their ClearML controller, not by the engine.
    with connection.cursor() as cursor:
        cursor.execute(sql.RUNS_OF_TASK.text, {"task": task.pk, "mirrored": PipelineDriver.CLEARML})
        run_ids = [run_id for (run_id,) in cursor.fetchall()]
    task_id, status = task.pk, task.status
    for run_id in run_ids:
        transaction.on_commit(lambda run_id=run_id: _jobs.advance_soon(run_id, task_id, status))
