"""The server worker's jobs for schedules and triggers: thin, by id, safe to run twice."""

from celery import shared_task

from . import schedules, triggers


@shared_task(name="automation.start_trigger_firing", acks_late=True)
def start_trigger_firing(firing_id: int) -> None:
    triggers.start_firing(firing_id)


@shared_task(name="automation.release_waiting", acks_late=True)
def release_waiting(schedule_id: str) -> None:
    schedules.release_waiting(schedule_id)


def sweep() -> None:
    """Run at every sweep of every server worker (registered with core's add_sweep_job):
    fire due ticks, start waiting and pending firings."""
    schedules.fire_due()
    schedules.release_all_waiting()
    triggers.start_pending()
