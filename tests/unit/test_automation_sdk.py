"""The SDK's TaskScheduler maps ClearML's add_task timing to cron or an interval, and refuses
what only a running client could do (pure: no server)."""

import pytest

from pipelines.automation.scheduler import clearml_cron


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        ({"minute": 15}, (None, 900.0)),  # every 15 minutes
        ({"hour": 1}, ("0 * * * *", None)),  # every hour
        ({"hour": 1, "minute": 30}, ("30 * * * *", None)),  # every hour at :30
        ({"minute": 30, "hour": 22, "day": 1}, ("30 22 * * *", None)),  # daily at 22:30
        ({"minute": 30, "hour": 7, "day": 2}, ("30 7 */2 * *", None)),  # every other day
        (
            {"minute": 30, "hour": 8, "day": 0, "weekdays": ["saturday"]},
            ("30 8 * * 6", None),
        ),  # Saturdays at 8:30
        ({"hour": 2, "weekdays": ["saturday", "sunday"]}, ("0 */2 * * 6,0", None)),
        ({"month": 1, "day": 5}, ("0 0 5 * *", None)),  # the 5th of each month
        ({"year": 1, "month": 3, "day": 4}, ("0 0 4 3 *", None)),  # every 4 March
    ],
)
def test_clearml_timing_becomes_cron_or_an_interval(timing, expected):
    args = {k: timing.get(k) for k in ("minute", "hour", "day", "weekdays", "month", "year")}
    assert clearml_cron(**args) == expected


def test_timing_nobody_can_run_server_side_is_refused():
    none = {"minute": None, "hour": None, "day": None, "weekdays": None, "month": None}
    with pytest.raises(NotImplementedError):
        clearml_cron(**none, year=2030)  # one date: ClearML's one-off
    with pytest.raises(ValueError):
        clearml_cron(**none, year=None)
    with pytest.raises(ValueError):
        clearml_cron(**{**none, "hour": 1, "weekdays": ["someday"]}, year=None)


def test_what_needs_a_running_client_is_refused_before_any_request(monkeypatch, tmp_path):
    from pipelines import client
    from pipelines.automation import TaskScheduler, TriggerScheduler

    monkeypatch.setenv("PIPELINES_API_URL", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("PIPELINES_API_KEY", "pk_none")
    monkeypatch.setenv("PIPELINES_CONFIG_FILE", str(tmp_path / "none.json"))
    client.set_client(None)
    try:
        scheduler, trigger = TaskScheduler(), TriggerScheduler()
        for options in (
            {"schedule_function": print},
            {"reuse_task": True},
            {"recurring": False},
            {"task_overrides": {"script.branch": "main"}},
        ):
            with pytest.raises(NotImplementedError):
                scheduler.add_task(schedule_task_id="a" * 32, minute=5, **options)
        with pytest.raises(NotImplementedError):
            trigger.add_task_trigger(schedule_function=print, trigger_on_status=["failed"])
        with pytest.raises(NotImplementedError):
            trigger.add_model_trigger(schedule_task_id="a" * 32)
        with pytest.raises(ValueError, match="one event per trigger"):
            trigger.add_task_trigger(
                schedule_task_id="a" * 32,
                trigger_on_status=["failed"],
                trigger_on_metric="loss",
                trigger_on_variant="val",
                trigger_on_threshold=1.0,
            )
    finally:
        client.set_client(None)
