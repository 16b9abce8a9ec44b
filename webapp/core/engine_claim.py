"""A worker claimed a step's task: its node only has to show as running.

Half of all events are claims and a claim decides nothing, so it takes conditional UPDATEs
instead of the run's lock. Their conditions (the node still queued, its task running, the run
running and driven here) keep them safe beside a locked pass, which never moves a node back
to queued; whatever they do not match is left to the locked pass.
"""

from django.db import connection
from django.utils import timezone

from . import engine_plot, sql
from .choices import NodeStatus, PipelineDriver, PipelineStatus, TaskStatus
from .engine_launch import one
from .models import PipelineNode, PipelineRun, Task


def mark_running(run_id: str, task_id: str, now=None) -> bool:
    """Show the node of a claimed task as running; False if it is not one to mark so."""
    now = now or timezone.now()
    return _mark_while_plot_due(run_id, task_id, now) or _mark_and_ask_for_plot(
        run_id, task_id, now
    )


def _mark_while_plot_due(run_id: str, task_id: str, now) -> bool:
    """Nearly always a refresh of the run's plot is already due, and it will show the
    change: then one statement is the whole event. Written out, since the ORM spends more
    building an UPDATE with subqueries than running it."""
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            _mark_while_plot_due_sql(),
            {
                "running": NodeStatus.RUNNING,
                "queued": NodeStatus.QUEUED,
                "task": task_id,
                "run": run_id,
                "updated": adapt(timezone.now()),
                "task_running": TaskStatus.IN_PROGRESS,
                "run_running": PipelineStatus.RUNNING,
                "mirrored": PipelineDriver.CLEARML,
                "due_since": adapt(now - engine_plot.LOST_AFTER),
            },
        )
        return cursor.rowcount > 0


def _mark_while_plot_due_sql() -> str:
    tables = (("node", PipelineNode), ("task", Task), ("run", PipelineRun))
    return sql.statement(_MARK_WHILE_PLOT_DUE, tables, _COLUMNS)


_COLUMNS = (
    *("id", "status", "status_reason", "updated", "message"),
    *("run_id", "task_id", "driver", "plot_due"),
)
_MARK_WHILE_PLOT_DUE = """
    UPDATE {node} SET {status} = %(running)s, {updated} = %(updated)s,
        {message} = (SELECT {status_reason} FROM {task} WHERE {id} = %(task)s)
    WHERE {run_id} = %(run)s AND {task_id} = %(task)s AND {status} = %(queued)s
        AND EXISTS (SELECT 1 FROM {task} WHERE {id} = %(task)s AND {status} = %(task_running)s)
        AND EXISTS (
            SELECT 1 FROM {run} WHERE {id} = %(run)s AND {status} = %(run_running)s
                AND {driver} <> %(mirrored)s AND {plot_due} > %(due_since)s
        )
"""


def _mark_and_ask_for_plot(run_id: str, task_id: str, now) -> bool:
    """The node's conditions read first, with the plot's fields, to ask for a refresh."""
    row = one(
        PipelineNode.objects.filter(
            run_id=run_id,
            task_id=task_id,
            status=NodeStatus.QUEUED,
            task__status=TaskStatus.IN_PROGRESS,
            run__status=PipelineStatus.RUNNING,
        )
        .exclude(run__driver=PipelineDriver.CLEARML)
        .values_list("task__status_reason", "run__plot_due", "run__plot_updated")
    )
    if row is None:
        return False
    reason, plot_due, plot_updated = row
    marked = PipelineNode.objects.filter(
        run_id=run_id, task_id=task_id, status=NodeStatus.QUEUED
    ).update(status=NodeStatus.RUNNING, message=reason, updated=timezone.now())
    if marked:
        engine_plot.request_unlocked(run_id, plot_due, plot_updated, now)
    return bool(marked)
