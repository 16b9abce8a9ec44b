"""Schedule verbs and firing against the real models: the clock is passed in, the server
worker's sweep is the same `fire_due` call the e2e tests run in real processes."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.factories import make_base_task, make_controller, make_user, run_as_worker
from webapp.automation import schedules
from webapp.automation.models import ScheduleFiring
from webapp.core import engine
from webapp.core.errors import InvalidInput, NotFound
from webapp.core.models import Task

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def base(user):
    return make_base_task(user, "nightly", params={"lr": "0.1"})


def _every(user, base, seconds=10, **fields):
    return schedules.create_schedule(
        user=user, name="s", base_task=base.pk, interval_seconds=seconds, **fields
    )


def _states(schedule):
    return [(f.state, f.task_id is not None) for f in schedule.firings.order_by("tick")]


def test_a_due_tick_fires_once_however_often_it_is_swept(user, base):
    schedule = _every(user, base, task_parameters={"General/lr": "0.5"})
    now = schedule.anchor + timedelta(seconds=10.5)
    assert schedules.fire_due(now) == 1
    assert schedules.fire_due(now) == 0
    assert schedules.fire_due(now + timedelta(seconds=1)) == 0
    firing = schedule.firings.get()
    clone = Task.objects.get(pk=firing.task_id)
    assert (firing.state, clone.status, clone.parent_id) == ("launched", "queued", base.pk)
    assert clone.hyperparameters["General"]["lr"]["value"] == "0.5"
    assert clone.runtime["started_by"]["schedule"] == schedule.pk


@override_settings(SCHEDULE_MISFIRE_GRACE_SECONDS=2)
@pytest.mark.parametrize(
    ("missed", "expected"),
    [
        ("run_once", [("launched", True)]),
        ("run_all", [("launched", True)] * 5),
        ("skip", [("skipped", False), ("launched", True)]),
    ],
)
def test_ticks_missed_while_no_worker_ran_follow_the_missed_policy(user, base, missed, expected):
    schedule = _every(user, base, missed=missed)
    # Five ticks pass (10 s apart) before any sweep sees them; the last is on time.
    schedules.fire_due(schedule.anchor + timedelta(seconds=50.5))
    assert _states(schedule) == expected
    # The next on-time tick fires normally under every policy.
    schedules.fire_due(schedule.anchor + timedelta(seconds=60.5))
    assert _states(schedule)[-1] == ("launched", True)


@override_settings(SCHEDULE_MISFIRE_GRACE_SECONDS=2)
def test_skip_records_why_and_still_fires_the_on_time_tick(user, base):
    schedule = _every(user, base, missed="skip")
    schedules.fire_due(schedule.anchor + timedelta(seconds=30.5))
    skipped, on_time = schedule.firings.order_by("tick")
    assert skipped.state == "skipped" and "2 tick(s)" in skipped.reason
    assert on_time.state == "launched"


def test_overlap_skip_and_queue_wait_for_the_run_before(user, base):
    skip = _every(user, base, overlap="skip")
    queue = schedules.create_schedule(
        user=user, name="q", base_task=base.pk, interval_seconds=10, overlap="queue"
    )
    for k in (1, 2, 3):
        schedules.fire_due(skip.anchor + timedelta(seconds=10 * k + 0.5))
    assert [f.state for f in skip.firings.order_by("tick")] == ["launched", "skipped", "skipped"]
    assert "still running (overlap: skip)" in skip.firings.order_by("tick")[1].reason
    assert [f.state for f in queue.firings.order_by("tick")] == ["launched", "waiting", "waiting"]
    first = queue.firings.order_by("tick").first()
    run_as_worker(Task.objects.get(pk=first.task_id))
    schedules.release_waiting(queue.pk)
    assert [f.state for f in queue.firings.order_by("tick")] == ["launched", "launched", "waiting"]
    # One at a time: the second is still running, so the third keeps waiting.
    assert schedules.release_waiting(queue.pk) is None


def test_a_failure_to_start_is_recorded_with_its_reason_and_the_schedule_goes_on(user, base):
    schedule = _every(user, base)
    base.delete()
    schedules.fire_due(schedule.anchor + timedelta(seconds=10.5))
    firing = schedule.firings.get()
    assert (firing.state, firing.reason) == ("failed", "base task not found")
    schedule.refresh_from_db()
    assert schedule.next_tick > firing.tick


def test_pause_and_resume_never_fire_the_ticks_in_between(user, base):
    schedule = _every(user, base)
    schedule = schedules.pause_schedule(schedule)
    assert schedules.upcoming(schedule) == []
    assert schedules.fire_due(timezone.now() + timedelta(seconds=100)) == 0
    schedule = schedules.resume_schedule(schedule)
    assert len(schedules.upcoming(schedule)) == 5
    assert schedule.next_tick > timezone.now()


def test_cron_in_a_time_zone_and_bad_definitions(user, base):
    schedule = schedules.create_schedule(
        user=user, name="c", base_task=base.pk, cron="30 2 * * *", timezone="Europe/Riga"
    )
    ticks = schedules.upcoming(schedule)
    assert len(ticks) == 5 and {t.astimezone(schedule_zone("Europe/Riga")).hour for t in ticks} == {
        2
    }
    for fields in (
        {"cron": "61 * * * *"},
        {"cron": "* * * * *", "timezone": "Mars/Olympus"},
        {"interval_seconds": 0.1},
        {"cron": "* * * * *", "interval_seconds": 5},
        {"interval_seconds": 5, "overlap": "sometimes"},
        {"interval_seconds": 5, "task_parameters": {"General/x": "${trigger.id}"}},
    ):
        with pytest.raises(InvalidInput):
            schedules.create_schedule(user=user, name="bad", base_task=base.pk, **fields)


def schedule_zone(name):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def test_another_teams_base_task_is_not_found_like_a_missing_one(user, base):
    other = make_user("mallory")
    for base_task in (base.pk, "0" * 32):
        with pytest.raises(NotFound) as error:
            schedules.create_schedule(user=other, name="x", base_task=base_task, interval_seconds=5)
        assert error.value.message == "base task not found"


def test_a_pipeline_schedule_runs_the_latest_run_with_its_parameters(user):
    make_base_task(user, "step1")
    controller = make_controller(user)
    run = engine.start_run(
        user=user,
        controller=controller,
        steps=[{"name": "a", "base_task_project": "examples", "base_task_name": "step1"}],
        parameters={"size": "1"},
        version="1.2",
    )
    schedule = schedules.create_schedule(
        user=user,
        name="p",
        pipeline_project="examples",
        pipeline_name="pipeline demo",
        pipeline_version="1.2",
        pipeline_parameters={"size": "7"},
        interval_seconds=10,
        overlap="allow",
    )
    with pytest.raises(InvalidInput):
        schedules.edit_schedule(schedule, {"pipeline_parameters": {"nope": 1}}, user=user)
    schedules.fire_due(schedule.anchor + timedelta(seconds=10.5))
    schedules.fire_due(schedule.anchor + timedelta(seconds=20.5))
    first, second = schedule.firings.order_by("tick")
    assert first.state == second.state == "launched"
    assert first.run.parameters == {"size": "7"} and first.run.steps == run.steps
    # The second firing ran the same definition (the controller script's run), not a copy
    # of the first firing's.
    assert second.run.controller.parent_id == controller.pk
    assert second.run.controller.runtime["version"] == "1.2"
    assert ScheduleFiring.objects.count() == 2


def test_ticks_around_clock_changes_follow_cronies_rules():
    from datetime import datetime
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from webapp.automation import timing

    riga = ZoneInfo("Europe/Riga")

    def local(cron, after, count):
        spec = SimpleNamespace(cron=cron, timezone="Europe/Riga", interval_seconds=None)
        return [
            t.astimezone(riga).strftime("%m-%d %H:%M%z")
            for t in timing.upcoming(spec, after, count)
        ]

    # Clocks go 03:00 -> 04:00 on 31 March: 03:30 that night fires at 04:00.
    assert local("30 3 * * *", datetime(2024, 3, 30, 12, tzinfo=riga), 2) == [
        "03-31 04:00+0300",
        "04-01 03:30+0300",
    ]
    # Clocks go 04:00 -> 03:00 on 27 October: a fixed 03:30 fires once ...
    assert local("30 3 * * *", datetime(2024, 10, 26, 12, tzinfo=riga), 2) == [
        "10-27 03:30+0300",
        "10-28 03:30+0200",
    ]
    # ... and every half hour fires in both copies of the repeated hour.
    assert local("*/30 * * * *", datetime(2024, 10, 27, 2, 45, tzinfo=riga), 4) == [
        "10-27 03:00+0300",
        "10-27 03:30+0300",
        "10-27 03:00+0200",
        "10-27 03:30+0200",
    ]


def test_a_firing_whose_server_worker_dies_midway_leaves_nothing_and_runs_once_later(
    user, base, monkeypatch
):
    from django.db import OperationalError

    from webapp.automation import launch

    schedule = _every(user, base)
    real_start = launch.start

    def dies(*args, **kwargs):
        raise OperationalError("the connection to the database was lost")

    monkeypatch.setattr(launch, "start", dies)
    now = schedule.anchor + timedelta(seconds=10.5)
    assert schedules.fire_due(now) == 0  # logged, rolled back whole
    assert not schedule.firings.exists() and not Task.objects.filter(parent=base).exists()
    monkeypatch.setattr(launch, "start", real_start)
    assert schedules.fire_due(now) == 1
    assert schedule.firings.get().state == "launched"
    assert Task.objects.filter(parent=base).count() == 1


def test_old_history_is_forgotten_but_waiting_firings_stay_and_start_only_when_resumed(user, base):
    from webapp.automation.tasks import forget_old_firings

    schedule = _every(user, base, overlap="queue")
    for k in (1, 2):
        schedules.fire_due(schedule.anchor + timedelta(seconds=10 * k + 0.5))
    launched, waiting = schedule.firings.order_by("tick")
    assert (launched.state, waiting.state) == ("launched", "waiting")
    old = timezone.now() - timedelta(days=31)
    ScheduleFiring.objects.update(created=old)
    # The launched one's run is still queued: overlap needs it, so it stays too.
    assert forget_old_firings() == 0
    schedule = schedules.pause_schedule(schedule)
    run_as_worker(Task.objects.get(pk=launched.task_id))
    assert schedules.release_waiting(schedule.pk) is None  # paused: nothing starts
    assert forget_old_firings() == 1
    assert list(schedule.firings.values_list("state", flat=True)) == ["waiting"]
    schedules.resume_schedule(schedule)
    assert schedules.release_waiting(schedule.pk).state == "launched"
