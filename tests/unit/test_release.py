"""A worker shutting down hands an attempt back (execution.release_task), and the sweep
forgets workers that stopped reporting (execution.forget_silent_workers)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_user
from webapp.core import execution, services
from webapp.core.choices import TaskStatus
from webapp.core.errors import Conflict
from webapp.core.models import ApiKey, QueueEntry, Worker

pytestmark = pytest.mark.django_db


def _queued(user, name: str, queue: str = "q"):
    task = services.create_task(user=user, project_name="p", name=name)
    return services.enqueue_task(task, queue)


def test_a_hand_back_queues_the_same_attempt_first_and_charges_nothing():
    user = make_user()
    running, waiting = _queued(user, "running"), _queued(user, "waiting")
    assert running.max_attempts == 1
    execution.worker_heartbeat("w1", ["q"])
    task, _ = execution.claim_task(running.id, running.attempt, "w1")
    # when the worker running it hands it back
    released = execution.release_task(task, task.attempt, "w1", "shutting down")
    # then it is queued again at the same attempt, ahead of what was waiting, with no key
    assert (released.status, released.attempt, released.worker) == ("queued", 1, "")
    assert released.status_reason == "handed back by w1: shutting down"
    entries = QueueEntry.objects.filter(queue__name="q").order_by("position", "added")
    assert [e.task_id for e in entries] == [running.id, waiting.id]
    assert not ApiKey.objects.filter(task=task, revoked__isnull=True).exists()
    assert Worker.objects.get(name="w1").current_task is None
    # and the next message of its queue runs it, though its one attempt was already "used"
    again, _ = execution.claim_turn(waiting.id, waiting.attempt, "w2", "m")
    assert (again.id, again.attempt, again.worker) == (running.id, 1, "w2")


def test_only_the_worker_holding_the_attempt_may_hand_it_back():
    task = _queued(make_user(), "t")
    task, _ = execution.claim_task(task.id, task.attempt, "w1")
    for attempt, worker in ((task.attempt, "w2"), (task.attempt + 1, "w1"), (0, "w1")):
        with pytest.raises(Conflict):
            execution.release_task(task, attempt, worker)
    task.refresh_from_db()
    assert (task.status, task.worker) == (TaskStatus.IN_PROGRESS, "w1")


def test_a_repeated_hand_back_is_answered_until_another_worker_takes_the_attempt():
    task = _queued(make_user(), "t")
    task, _ = execution.claim_task(task.id, task.attempt, "w1")
    execution.release_task(task, task.attempt, "w1")
    # the same hand-back again (its answer was lost): the queued task, nothing changed
    repeat = execution.release_task(task, task.attempt, "w1")
    assert (repeat.status, repeat.attempt) == ("queued", 1)
    assert QueueEntry.objects.filter(task=task).count() == 1
    # once another worker runs the attempt, the first can neither hand it back nor keep it
    execution.claim_task(task.id, task.attempt, "w2")
    with pytest.raises(Conflict):
        execution.release_task(task, task.attempt, "w1")
    assert execution.heartbeat(task, task.attempt, "w1") is False
    assert execution.heartbeat(task, task.attempt, "w2") is True
    task.refresh_from_db()
    assert (task.status, task.worker) == (TaskStatus.IN_PROGRESS, "w2")


def test_an_attempt_the_reaper_moved_on_cannot_be_handed_back():
    task = _queued(make_user(), "t")
    task, _ = execution.claim_task(task.id, task.attempt, "w1")
    later = timezone.now() + timedelta(hours=1)
    assert execution.reap_expired_leases(now=later) == [task.id]
    with pytest.raises(Conflict):
        execution.release_task(task, task.attempt, "w1")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED


def test_workers_silent_past_the_forget_time_are_removed(settings):
    settings.WORKER_FORGET_SECONDS = 60
    execution.worker_heartbeat("silent", ["q"])
    execution.worker_heartbeat("live", ["q"])
    Worker.objects.filter(name="silent").update(last_seen=timezone.now() - timedelta(minutes=2))
    assert execution.forget_silent_workers() == ["silent"]
    assert list(Worker.objects.values_list("name", flat=True)) == ["live"]
    # one that reports again is listed again
    execution.worker_heartbeat("silent", ["q"])
    assert Worker.objects.filter(name="silent").exists()
