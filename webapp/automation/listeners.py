"""What this app follows in core, registered by its AppConfig."""

from django.db import transaction

from webapp.core.choices import ACTIVE_STATES

from . import jobs, triggers
from .choices import FiringState, Overlap
from .models import ScheduleFiring


def on_task_status_changed(task) -> None:
    triggers.on_task_status_changed(task)
    if task.status in ACTIVE_STATES:
        return
    # A run a schedule started ended: a firing that waits for it (overlap: queue) may start.
    waiting = ScheduleFiring.objects.filter(
        task=task, state=FiringState.LAUNCHED, schedule__overlap=Overlap.QUEUE
    ).values_list("schedule_id", flat=True)
    for schedule_id in set(waiting):
        transaction.on_commit(
            lambda schedule_id=schedule_id: jobs.release_waiting_soon(schedule_id)
        )
