"""What a worker reports a step used: stored with the attempt's end, checked by the verb
(both doors), and never shown for a later attempt or after a reset."""

import pytest

from tests.factories import make_user
from webapp.core import execution, services
from webapp.core.errors import InvalidInput
from webapp.core.models import Task

pytestmark = pytest.mark.django_db

USED = {"cpu_seconds": 1.25, "peak_rss_bytes": 50_000_000, "wall_seconds": 2.5}


def _claimed():
    task = services.create_task(user=make_user(), project_name="p", name="t")
    services.enqueue_task(task, "default")
    task.refresh_from_db()
    assert execution.claim_task(task.id, task.attempt, "w") is not None
    task.refresh_from_db()
    return task


def test_the_end_of_an_attempt_stores_what_it_used_and_unreported_gpu_time_stays_unknown():
    task = _claimed()
    execution.finish_task(task, task.attempt, "completed", resources=USED)
    task = Task.objects.get(pk=task.pk)
    assert (task.resource_cpu_seconds, task.resource_peak_rss_bytes) == (1.25, 50_000_000)
    assert task.resource_wall_seconds == 2.5 and task.resource_gpu_seconds is None


@pytest.mark.parametrize(
    "bad",
    [
        {"cpu_seconds": -0.1},
        {"cpu_seconds": float("nan")},
        {"wall_seconds": float("inf")},
        {"peak_rss_bytes": 2**60},
        {"gpu_seconds": "3"},
        {"cpu_seconds": True},
        {"disk_bytes": 1},
        ["cpu_seconds"],
    ],
)
def test_the_verb_refuses_impossible_numbers_whichever_door_calls_it(bad):
    task = _claimed()
    with pytest.raises(InvalidInput):
        execution.finish_task(task, task.attempt, "completed", resources=bad)
    assert Task.objects.get(pk=task.pk).status == "in_progress"  # nothing happened


def test_a_reset_forgets_what_the_last_attempt_used():
    task = _claimed()
    task = execution.finish_task(task, task.attempt, "completed", resources=USED)
    services.reset_task(task)
    task = Task.objects.get(pk=task.pk)
    assert task.resource_cpu_seconds is None and task.resource_peak_rss_bytes is None
    assert task.resource_wall_seconds is None
