import pytest

from tests.factories import make_user
from webapp.core import execution, services
from webapp.core.choices import TASK_TRANSITIONS, TaskStatus
from webapp.core.errors import Conflict

pytestmark = pytest.mark.django_db


def _task(user, **kwargs):
    return services.create_task(user=user, project_name="p", name="t", **kwargs)


def test_every_status_has_a_row_in_the_transition_table():
    assert set(TASK_TRANSITIONS) == set(TaskStatus.values)


def test_an_illegal_transition_is_a_conflict_naming_the_current_status():
    task = _task(make_user())
    with pytest.raises(Conflict) as error:
        services.publish_task(task)
    assert error.value.details["status"] == "created"


def test_claim_is_a_compare_and_set_per_attempt():
    task = _task(make_user())
    services.enqueue_task(task, "default")
    task.refresh_from_db()
    assert execution.claim_task(task.id, task.attempt + 1, "w1") is None
    first = execution.claim_task(task.id, task.attempt, "w1")
    second = execution.claim_task(task.id, task.attempt, "w2")
    assert first is not None and second is None
    assert first[0].worker == "w1"


def test_a_late_report_from_a_superseded_attempt_is_refused():
    task = _task(make_user())
    services.enqueue_task(task, "default")
    task.refresh_from_db()
    execution.claim_task(task.id, task.attempt, "w1")
    services.abort_task(task)
    with pytest.raises(Conflict):
        execution.finish_task(task, task.attempt, "completed")
    assert execution.heartbeat(task, task.attempt) is False


def test_clone_is_a_draft_with_deep_copied_definition_and_the_source_as_parent():
    user = make_user()
    source = services.create_task(
        user=user,
        project_name="p",
        name="src",
        script={"code": "print(1)"},
        hyperparameters={"General": {"x": 1}},
    )
    clone = services.clone_task(source, user=user, hyperparameters={"General": {"x": 2}})
    source.refresh_from_db()
    assert clone.status == "created" and clone.parent_id == source.id
    assert clone.hyperparameters["General"]["x"]["value"] == "2"
    assert source.hyperparameters["General"]["x"]["value"] == "1"
    assert clone.script == source.script


def test_the_reaper_fails_a_running_task_whose_worker_went_silent(settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.TASK_LEASE_SECONDS = 2
    task = _task(make_user())
    services.enqueue_task(task, "default")
    task.refresh_from_db()
    execution.claim_task(task.id, task.attempt, "w1")
    assert execution.reap_expired_leases() == []
    later = timezone.now() + timedelta(seconds=5)
    assert execution.reap_expired_leases(now=later) == [task.id]
    task.refresh_from_db()
    assert task.status == "failed" and "stopped heartbeating" in task.status_reason
