"""The server worker's jobs this app asks for, sent by name (tasks.py runs them). A job
that cannot be sent is logged, never raised: the sweep does the same work anyway."""

import logging

from webapp.celery import app

logger = logging.getLogger(__name__)

START_TRIGGER_FIRING = "automation.start_trigger_firing"
RELEASE_WAITING = "automation.release_waiting"


def start_trigger_firing_soon(firing_id: int) -> None:
    try:
        app.send_task(START_TRIGGER_FIRING, args=[firing_id])
    except Exception:  # noqa: BLE001 - the sweep starts pending firings
        logger.warning("could not ask to start trigger firing %s", firing_id, exc_info=True)


def release_waiting_soon(schedule_id: str) -> None:
    try:
        app.send_task(RELEASE_WAITING, args=[schedule_id])
    except Exception:  # noqa: BLE001 - the sweep releases waiting firings
        logger.warning("could not ask to release schedule %s", schedule_id, exc_info=True)
