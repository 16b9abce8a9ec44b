"""A worker claimed a step's task: its node only has to show as running.

Half of all events are claims and a claim decides nothing, so it takes conditional UPDATEs
instead of the run's lock. Their conditions (the node still queued, its task running, the run
running and driven here) keep them safe beside a locked pass, which never moves a node back
to queued; whatever they do not match is left to the locked pass.
"""

from django.db import connection
from django.utils import timezone

from .. import sql
from ..choices import NodeStatus, PipelineDriver, PipelineStatus, TaskStatus
from ..models import PipelineNode
from . import _plot
from ._pass import one


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
            sql.MARK_NODE_RUNNING_WHILE_PLOT_DUE.text,
            {
                "running": NodeStatus.RUNNING,
                "queued": NodeStatus.QUEUED,
                "task": task_id,
                "run": run_id,
                "updated": adapt(timezone.now()),
                "task_running": TaskStatus.IN_PROGRESS,
                "run_running": PipelineStatus.RUNNING,
                "mirrored": PipelineDriver.CLEARML,
                "due_since": adapt(now - _plot.LOST_AFTER),
            },
        )
        return cursor.rowcount > 0


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
        _plot.request_unlocked(run_id, plot_due, plot_updated, now)
    return bool(marked)
