"""The server worker's jobs for schedules and triggers: thin, by id, safe to run twice."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from webapp.core.choices import ACTIVE_STATES

from . import schedules, triggers
from .choices import OPEN_FIRING_STATES, FiringState
from .models import ScheduleFiring, TriggerFiring

PRUNE_BATCH = 1000


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
    forget_old_firings()


def forget_old_firings() -> int:
    """History older than AUTOMATION_HISTORY_DAYS goes, a batch per sweep; firings still
    pending or waiting, and those whose run is still going, stay. (A trigger's event never
    comes back, and a schedule's ticks only move forward, so a forgotten firing cannot fire
    again.)"""
    before = timezone.now() - timedelta(days=settings.AUTOMATION_HISTORY_DAYS)
    removed = 0
    for model in (ScheduleFiring, TriggerFiring):
        old = (
            model.objects.filter(created__lt=before)
            .exclude(state__in=OPEN_FIRING_STATES)
            # what overlap and single_instance look at: a run still going
            .exclude(state=FiringState.LAUNCHED, task__status__in=ACTIVE_STATES)
        )
        ids = list(old.order_by("created").values_list("pk", flat=True)[:PRUNE_BATCH])
        if ids:
            removed += model.objects.filter(pk__in=ids).delete()[0]
    return removed
