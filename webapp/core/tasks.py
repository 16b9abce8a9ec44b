"""Server-side Celery tasks. Thin: each takes ids and calls a service or the engine."""

from celery import shared_task

from . import services


@shared_task(name="core.advance_pipeline", acks_late=True)
def advance_pipeline(run_id: str) -> None:
    from . import engine

    engine.advance(run_id)


@shared_task(name="core.sweep")
def sweep() -> dict:
    """The periodic safety net: reap lost leases, re-publish lost messages, advance runs."""
    from . import engine

    reaped = services.reap_expired_leases()
    republished = services.republish_queued()
    advanced = engine.advance_all_running()
    return {"reaped": reaped, "republished": republished, "advanced": advanced}
