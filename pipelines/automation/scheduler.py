"""`TaskScheduler`, ClearML's names, with the schedules kept and fired by the server.

ClearML's scheduler is a script that must itself run for ever (on the services queue).
Here `add_task()` registers a schedule on the server at once (or updates the one of that
name), the server worker fires it, and `start()` returns: nothing has to keep running.
"""

from typing import Any

from . import _registered

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class TaskScheduler:
    """Schedules (cron, or every N seconds) of task clones or pipeline runs."""

    def __init__(
        self,
        sync_frequency_minutes: float = 15,
        force_create_task_name: str | None = None,
        force_create_task_project: str | None = None,
        pooling_frequency_minutes: float | None = None,
        **_ignored: Any,
    ):
        # The sync and pooling frequencies pace ClearML's client loop; there is none here.
        self._schedules = _registered.ServerRegistry("schedules")

    def add_task(
        self,
        schedule_task_id: Any = None,
        schedule_function=None,
        queue: str | None = None,
        name: str | None = None,
        target_project: str | None = None,
        minute: int | None = None,
        hour: int | None = None,
        day: int | None = None,
        weekdays: list | None = None,
        month: int | None = None,
        year: int | None = None,
        limit_execution_time: float | None = None,
        single_instance: bool = False,
        recurring: bool = True,
        execute_immediately: bool = False,
        reuse_task: bool = False,
        task_parameters: dict | None = None,
        task_overrides: dict | None = None,
        *,
        cron: str | None = None,
        interval_seconds: float | None = None,
        timezone: str = "UTC",
        overlap: str | None = None,
        missed: str = "run_once",
        tags: list | None = None,
        paused: bool = False,
    ) -> bool:
        """Clone `schedule_task_id` and enqueue it on `queue` at every tick.

        The tick comes from `cron` (five fields, or six with seconds first, in `timezone`),
        `interval_seconds`, or ClearML's minute/hour/day/weekdays/month/year (UTC, as in
        ClearML: `minute=15` every 15 minutes, `hour=1, minute=30` at :30 every hour,
        `day=1, hour=22, minute=30` every day at 22:30, `weekdays=[...]` with `day=0` at a
        time on those days). `single_instance` skips a tick while the previous clone runs
        (`overlap="skip"`; "queue" waits for it, "allow" starts alongside); `missed` says
        what ticks missed while the server worker was down do (run_once, run_all, skip).
        """
        _registered.refuse(
            schedule_function=schedule_function,
            reuse_task=reuse_task,
            task_overrides=task_overrides,
            execute_immediately=execute_immediately,
            **{"recurring=False": not recurring},
        )
        body = _registered.target(
            schedule_task_id,
            queue=queue,
            task_parameters=task_parameters,
            target_project=target_project,
        )
        if limit_execution_time:
            body["time_limit"] = float(limit_execution_time) * 3600
        name = name or body["base_task"]
        self._register(
            name, body, cron, interval_seconds, (minute, hour, day, weekdays, month, year),
            timezone=timezone, overlap=overlap or ("skip" if single_instance else "allow"),
            missed=missed, tags=tags, paused=paused,
        )  # fmt: skip
        return True

    def add_pipeline(
        self,
        pipeline_project: str,
        pipeline_name: str,
        pipeline_version: str | None = None,
        pipeline_parameters: dict | None = None,
        name: str | None = None,
        *,
        cron: str | None = None,
        interval_seconds: float | None = None,
        minute: int | None = None,
        hour: int | None = None,
        day: int | None = None,
        weekdays: list | None = None,
        month: int | None = None,
        year: int | None = None,
        timezone: str = "UTC",
        single_instance: bool = False,
        overlap: str | None = None,
        missed: str = "run_once",
        tags: list | None = None,
        paused: bool = False,
    ) -> bool:
        """Run a pipeline (named by its controller's project, name and optionally version)
        at every tick, from its latest run's definition with `pipeline_parameters`
        overriding that run's; timing as in add_task()."""
        body = _registered.target(
            pipeline_project=pipeline_project,
            pipeline_name=pipeline_name,
            pipeline_version=pipeline_version,
            pipeline_parameters=pipeline_parameters,
        )
        self._register(
            name or f"{pipeline_project}/{pipeline_name}", body, cron, interval_seconds,
            (minute, hour, day, weekdays, month, year), timezone=timezone,
            overlap=overlap or ("skip" if single_instance else "allow"), missed=missed,
            tags=tags, paused=paused,
        )  # fmt: skip
        return True

    def _register(self, name, body, cron, interval_seconds, clearml_timing, **options):
        if cron is None and interval_seconds is None:
            cron, interval_seconds = clearml_cron(*clearml_timing)
        body = {
            **body,
            "name": name,
            "cron": cron or "",
            "interval_seconds": interval_seconds,
            "timezone": options["timezone"],
            "overlap": options["overlap"],
            "missed": options["missed"],
            "tags": list(options["tags"] or []),
            "paused": bool(options["paused"]),
        }
        return self._schedules.upsert(body)

    def get_scheduled_tasks(self) -> list[_registered.Registered]:
        """Every schedule you can see (`.name`, `.id`, `.next_run()`, `.paused`, `.data`)."""
        return self._schedules.all()

    def remove_task(self, task_id: Any) -> bool:
        """Delete the schedules of a base task (or the schedule with that name or id)."""
        return self._schedules.remove(str(getattr(task_id, "id", task_id)))

    def pause(self, name: str) -> bool:
        return self._schedules.set_paused(name, True)

    def resume(self, name: str) -> bool:
        return self._schedules.set_paused(name, False)

    def get_firings(self, name: str) -> list[dict]:
        """A schedule's history: each tick, what it started, or why it did not."""
        return self._schedules.firings(name)

    def start(self) -> None:
        """Returns at once: the server fires the schedules (ClearML's loops here)."""
        print(f"{len(self._schedules.all())} schedule(s) run on the server", flush=True)

    def start_remotely(self, queue: str = "services") -> None:
        """As start(): there is no scheduler process to run on `queue`."""
        self.start()


def clearml_cron(minute, hour, day, weekdays, month, year) -> tuple[str | None, float | None]:
    """ClearML's add_task timing as (cron, interval_seconds)."""
    if year and year > 2000:
        raise NotImplementedError("a schedule for one date (year=...) is not supported")
    if not any(v for v in (minute, hour, day, month, year)) and not weekdays:
        raise ValueError("no schedule given: cron=, interval_seconds= or minute/hour/day/...")
    m = int(minute or 0)
    dows = ",".join(str((_WEEKDAYS.index(w) + 1) % 7) for w in _weekday_names(weekdays))
    if year:
        return f"{m} {int(hour or 0)} {int(day or 1)} {int(month or 1)} *", None
    if month:
        return f"{m} {int(hour or 0)} {int(day or 1)} {_every(month)} *", None
    if weekdays and day is None:
        return f"{m} {_every(hour) if hour else '*'} * * {dows}", None
    if weekdays:
        return f"{m} {int(hour or 0)} * * {dows}", None
    if day:
        return f"{m} {int(hour or 0)} {_every(day)} * *", None
    if hour:
        return f"{m} {_every(hour)} * * *", None
    return None, float(minute) * 60


def _every(n) -> str:
    return "*" if int(n) == 1 else f"*/{int(n)}"


def _weekday_names(weekdays) -> list[str]:
    names = []
    for day in weekdays or []:
        if isinstance(day, int):
            names.append(_WEEKDAYS[min(6, max(day, 0))])
        elif str(day).lower() in _WEEKDAYS:
            names.append(str(day).lower())
        else:
            raise ValueError(f"unknown weekday {day!r}")
    return names
