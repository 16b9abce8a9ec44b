"""Server-side Celery tasks. Thin: each takes ids and calls a service or the engine.

The engine sends `core.advance_pipeline` and `core.refresh_pipeline_plot` by name
(engine/_jobs.py); the server worker runs them, and the periodic `core.sweep`, here.
"""

import logging
import threading
from collections.abc import Callable

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import close_old_connections

# The configured app must exist before a shared task is first sent: otherwise `.delay()` in a
# process that has not published a run yet goes to Celery's unconfigured default app.
from webapp.celery import app as _app  # noqa: F401

from . import engine, execution

logger = logging.getLogger(__name__)

_sweep_jobs: list[Callable] = []


def add_sweep_job(job: Callable) -> None:
    """Run `job()` at every sweep too (other apps' housekeeping, registered by their
    AppConfig; the API forgets stored answers to idempotent requests this way)."""
    if job not in _sweep_jobs:
        _sweep_jobs.append(job)


@shared_task(name="core.advance_pipeline", acks_late=True)
def advance_pipeline(
    run_id: str, task_id: str | None = None, task_status: str | None = None
) -> None:
    # task_status defaults for messages sent before it was added.
    engine.advance(run_id, changed_task_id=task_id, task_status=task_status)


@shared_task(name="core.refresh_pipeline_plot", acks_late=True)
def refresh_pipeline_plot(run_id: str) -> None:
    engine.refresh_plot(run_id)


@shared_task(name="core.sweep")
def sweep() -> dict:
    """The periodic safety net: reap lost leases, re-publish lost messages, advance runs,
    and the other apps' housekeeping (workers that stopped reporting long ago are forgotten)."""
    reaped = execution.reap_expired_leases()
    republished = execution.republish_queued()
    advanced = engine.advance_all_running()
    forgotten = execution.forget_silent_workers()
    for job in _sweep_jobs:
        try:
            job()
        except Exception:  # noqa: BLE001 - one job failing must not stop the others
            logger.exception("sweep job %r failed", job)
    return {
        "reaped": reaped,
        "republished": republished,
        "advanced": advanced,
        "forgotten": forgotten,
    }


_sweeper_started = threading.Lock()


@worker_ready.connect
def _start_sweeper_in_the_server_worker(**_kwargs) -> None:
    start_sweeper()


def start_sweeper(interval: float | None = None) -> threading.Thread | None:
    """Run `sweep` every `interval` seconds in a thread of this process (the server worker).

    A thread rather than `celery beat`: no extra process to supervise, no schedule file, and
    a sweep never queues up behind a broker that is down. Sweeps are idempotent, so two
    server workers sweeping is only redundant work.
    """
    interval = settings.SWEEP_INTERVAL_SECONDS if interval is None else interval
    if interval <= 0 or not _sweeper_started.acquire(blocking=False):
        return None
    thread = threading.Thread(target=_sweep_forever, args=(interval,), name="sweeper")
    thread.daemon = True
    thread.start()
    logger.info("sweeping every %gs", interval)
    return thread


def _sweep_forever(interval: float) -> None:
    stop = threading.Event()
    while not stop.wait(interval):
        try:
            result = sweep()
            if result["reaped"] or result["republished"] or result["forgotten"]:
                logger.info("sweep: %s", result)
        except Exception:  # noqa: BLE001 - the next sweep tries again
            logger.exception("sweep failed")
        finally:
            close_old_connections()
