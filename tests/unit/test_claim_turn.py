"""A broker message claims a turn in its queue: who gets which task, and what a retried or
repeated claim gets."""

import pytest

from tests.factories import make_user
from webapp.core import execution, services
from webapp.core.choices import TaskStatus
from webapp.core.errors import Conflict
from webapp.core.models import QueueEntry

pytestmark = pytest.mark.django_db


def _queued(user, name: str, queue: str = "q"):
    task = services.create_task(user=user, project_name="p", name=name)
    return services.enqueue_task(task, queue)


def test_a_message_claims_the_first_task_waiting_in_its_queue():
    user = make_user()
    first, second = _queued(user, "a"), _queued(user, "b")
    task, key = execution.claim_turn(second.id, second.attempt, "w", "m2")
    assert task.id == first.id and task.status == TaskStatus.IN_PROGRESS and key
    assert not QueueEntry.objects.filter(task_id=first.id).exists()


def test_a_retried_claim_gets_the_same_task_while_others_wait():
    user = make_user()
    first, second = _queued(user, "a"), _queued(user, "b")
    claimed, _ = execution.claim_turn(first.id, first.attempt, "w", "m1")
    again, _ = execution.claim_turn(first.id, first.attempt, "w", "m1")
    assert again.id == claimed.id == first.id
    second.refresh_from_db()
    assert second.status == TaskStatus.QUEUED


def test_a_second_delivery_claims_nothing_once_the_queue_is_empty():
    task = _queued(make_user(), "a")
    assert execution.claim_turn(task.id, task.attempt, "w", "m1") is not None
    assert execution.claim_turn(task.id, task.attempt, "w", "m2") is None
    assert execution.claim_turn(task.id, task.attempt, "w") is None


def test_a_retried_claim_is_recognised_once_the_queue_is_empty():
    task = _queued(make_user(), "a")
    claimed, _ = execution.claim_turn(task.id, task.attempt, "w", "m1")
    again, _ = execution.claim_turn(task.id, task.attempt, "w", "m1")
    assert again.id == claimed.id == task.id


def test_a_claim_without_an_id_takes_the_turn_too():
    task = _queued(make_user(), "a")
    claimed, _ = execution.claim_turn(task.id, task.attempt, "w")
    assert claimed.id == task.id and claimed.worker == "w"


def test_an_enqueue_answers_with_the_row_as_stored():
    task = services.create_task(user=make_user(), project_name="p", name="a")
    queued = services.enqueue_task(task, "q")
    stored = type(task).objects.get(pk=task.pk)
    for field in ("status", "status_reason", "attempt", "queue_id", "worker", "last_update"):
        assert getattr(queued, field) == getattr(stored, field), field


def test_an_enqueue_of_a_stale_read_falls_back_to_the_checked_transition():
    user = make_user()
    task = services.create_task(user=user, project_name="p", name="a")
    stale = type(task).objects.get(pk=task.pk)
    services.enqueue_task(task, "q")
    services.dequeue_task(task)
    # The row is a draft again, one attempt on: the stale read's attempt is not reused.
    queued = services.enqueue_task(stale, "q")
    assert queued.attempt == 2
    with pytest.raises(Conflict):
        services.enqueue_task(type(task).objects.get(pk=task.pk), "q")


def test_an_attempt_no_database_integer_can_hold_claims_nothing():
    task = _queued(make_user(), "a")
    # A message takes a turn in its queue: the waiting task's own attempt is the one claimed.
    assert execution.claim_turn(task.id, 10**30, "w", "m1") is not None
    other = _queued(make_user(), "b")
    assert execution.claim_task(other.id, 10**30, "w", "m2") is None
