"""The server worker's jobs the engine asks for: advance a run, refresh its plot.

Sent by name through the Celery app (the jobs themselves are in core/tasks.py, which calls
the engine), so the engine does not import the module that imports it. A job that cannot be
sent is logged, never raised: the periodic sweep advances every running run anyway.
"""

import logging

from webapp.celery import app

logger = logging.getLogger(__name__)

ADVANCE = "core.advance_pipeline"
REFRESH_PLOT = "core.refresh_pipeline_plot"


def advance_soon(run_id: str, task_id: str | None = None, task_status: str | None = None) -> None:
    try:
        app.send_task(ADVANCE, args=[run_id, task_id, task_status])
    except Exception:  # noqa: BLE001 - the periodic sweep advances it anyway
        logger.warning("could not schedule the engine for run %s", run_id, exc_info=True)


def refresh_plot_at(run_id: str, due) -> None:
    try:
        app.send_task(REFRESH_PLOT, args=[run_id], eta=due)
    except Exception:  # noqa: BLE001 - the next event asks again
        logger.warning("could not schedule the plot of run %s", run_id, exc_info=True)
