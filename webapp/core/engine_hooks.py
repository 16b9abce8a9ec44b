"""The seam between task status changes and the pipeline engine."""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def task_status_changed(task) -> None:
    """After commit, ask the engine to advance the pipeline this task is a step of."""
    from .choices import TaskStatus
    from .models import PipelineNode

    if task.status == TaskStatus.QUEUED:
        return  # the engine (or a user) enqueued it; nothing for the engine to decide
    run_ids = list(PipelineNode.objects.filter(task_id=task.pk).values_list("run_id", flat=True))
    for run_id in run_ids:
        transaction.on_commit(lambda run_id=run_id: _advance_soon(run_id, task.pk))


def _advance_soon(run_id: str, task_id: str | None = None) -> None:
    try:
        from .tasks import advance_pipeline

        advance_pipeline.delay(run_id, task_id)
    except Exception:  # noqa: BLE001 - the periodic sweep advances it anyway
        logger.warning("could not schedule the engine for run %s", run_id, exc_info=True)
