"""Schedule verbs: create, edit, pause, resume, delete; and firing due ticks.

How a tick fires exactly once, with any number of server workers sweeping: the sweep of
each one looks for schedules whose `next_tick` has passed and, for each, in one transaction,
locks the schedule row (PostgreSQL; SQLite's write transactions run one at a time), reads
which ticks are due since `covered_until`, inserts a firing row per tick (unique by
schedule and tick), starts what each tick starts, and moves `covered_until` and `next_tick`
on. A second worker finds the row moved on and does nothing; a worker killed midway leaves
nothing committed, so the next sweep does the same ticks again. The firing row is the truth.

Missed ticks: a tick more than SCHEDULE_MISFIRE_GRACE_SECONDS old when it is seen passed
while no server worker ran. `run_once` starts one run for all the due ticks (on the newest),
`run_all` starts each (at most SCHEDULE_MAX_CATCHUP, the newest), `skip` records them
skipped and starts only the ticks that are on time.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from webapp.core.choices import ACTIVE_STATES
from webapp.core.errors import Conflict, DomainError, InvalidInput

from . import launch, targets, timing
from .choices import FiringState, Missed, Overlap
from .models import Schedule, ScheduleFiring

logger = logging.getLogger(__name__)

TIMING_FIELDS = ("cron", "interval_seconds", "timezone", "overlap", "missed")
EDITABLE = {"name", "paused", *TIMING_FIELDS, *targets.TARGET_FIELDS}


# ---------------------------------------------------------------- the verbs


@transaction.atomic
def create_schedule(*, user, name: str, **fields) -> Schedule:
    """A schedule of `user`'s, checked whole (nothing is kept when anything is refused, not
    even the target project it would create); it fires from its first tick after now."""
    targets.refuse_unknown(fields, EDITABLE, editing=False)
    target, project = targets.checked_target(user, fields, allow_trigger=False)
    values = _checked_timing(fields)
    now = timezone.now()
    schedule = Schedule(
        name=targets.checked_name(name),
        project=project,
        created_by=user,
        paused=bool(fields.get("paused", False)),
        anchor=now,
        covered_until=now,
        created=now,
        updated=now,
        **target,
        **values,
    )
    targets.refuse_duplicate_name(schedule)
    schedule.next_tick = None if schedule.paused else _next(schedule, now)
    try:
        with transaction.atomic():
            schedule.save(force_insert=True)
    except IntegrityError as error:  # the same name created meanwhile
        raise Conflict(
            f"project {project.name!r} already has a schedule named {schedule.name!r}"
        ) from error
    return schedule


def edit_schedule(schedule: Schedule, changes: dict, *, user) -> Schedule:
    """Change fields; the target is checked again as `user` sees it. A new timing applies
    from now: ticks of the old one that have not come yet never fire."""
    targets.refuse_unknown(changes, EDITABLE, editing=True)
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().get(pk=schedule.pk)
        targets.apply_target_changes(schedule, changes, user=user, allow_trigger=False)
        if set(changes) & set(TIMING_FIELDS):
            current = {name: getattr(schedule, name) for name in TIMING_FIELDS}
            merged = {**current, **changes}
            if "cron" in changes and changes["cron"]:
                merged["interval_seconds"] = None
            if changes.get("interval_seconds") is not None:
                merged["cron"] = ""
            for name, value in _checked_timing(merged).items():
                setattr(schedule, name, value)
            now = timezone.now()
            schedule.anchor = now
            schedule.covered_until = max(schedule.covered_until, now)
        if "name" in changes:
            schedule.name = targets.checked_name(changes["name"])
            targets.refuse_duplicate_name(schedule)
        if "paused" in changes:
            _set_paused(schedule, bool(changes["paused"]))
        if not schedule.paused:
            schedule.next_tick = _next(schedule, schedule.covered_until)
        schedule.updated = timezone.now()
        schedule.save()
    return schedule


def pause_schedule(schedule: Schedule) -> Schedule:
    """Stop firing. Ticks while paused are not missed: they never come."""
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().get(pk=schedule.pk)
        _set_paused(schedule, True)
        schedule.save(update_fields=["paused", "next_tick", "covered_until", "updated"])
    return schedule


def resume_schedule(schedule: Schedule) -> Schedule:
    """Fire again from the first tick after now."""
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().get(pk=schedule.pk)
        _set_paused(schedule, False)
        schedule.save(update_fields=["paused", "next_tick", "covered_until", "updated"])
    return schedule


def delete_schedule(schedule: Schedule) -> None:
    """Delete it and its history; what it started keeps running."""
    Schedule.objects.filter(pk=schedule.pk).delete()


def upcoming(schedule: Schedule, count: int = 5) -> list:
    """The next `count` fire times (UTC), none while paused."""
    if schedule.paused:
        return []
    return timing.upcoming(schedule, max(schedule.covered_until, timezone.now()), count)


def _set_paused(schedule: Schedule, paused: bool) -> None:
    now = timezone.now()
    if paused == schedule.paused:
        return
    schedule.paused = paused
    schedule.updated = now
    if paused:
        schedule.next_tick = None
    else:
        schedule.covered_until = max(schedule.covered_until, now)
        schedule.next_tick = _next(schedule, schedule.covered_until)


def _checked_timing(fields: dict) -> dict:
    cron = str(fields.get("cron") or "").strip()
    interval = fields.get("interval_seconds")
    if interval is not None and not isinstance(interval, bool):
        try:
            interval = float(interval)
        except (TypeError, ValueError) as error:
            raise InvalidInput(
                "interval_seconds must be a number", field="interval_seconds"
            ) from error
    zone = str(fields.get("timezone") or "UTC").strip()
    timing.check(cron, interval, zone)
    overlap = fields.get("overlap") or Overlap.ALLOW
    missed = fields.get("missed") or Missed.RUN_ONCE
    if overlap not in Overlap.values:
        raise InvalidInput(f"overlap must be one of {', '.join(Overlap.values)}", field="overlap")
    if missed not in Missed.values:
        raise InvalidInput(f"missed must be one of {', '.join(Missed.values)}", field="missed")
    return {
        "cron": cron,
        "interval_seconds": interval if not cron else None,
        "timezone": zone,
        "overlap": overlap,
        "missed": missed,
    }


def _next(schedule: Schedule, after):
    return timing.upcoming(schedule, after, 1)[0]


# ---------------------------------------------------------------- firing (the server worker)


def fire_due(now=None) -> int:
    """Fire every schedule whose next tick has passed; returns how many firings it made."""
    now = now or timezone.now()
    due = list(
        Schedule.objects.filter(paused=False, next_tick__lte=now).values_list("pk", flat=True)
    )
    made = 0
    for schedule_id in due:
        try:
            made += len(fire(schedule_id, now))
        except Exception:  # noqa: BLE001 - one schedule must not stop the others
            logger.exception("firing schedule %s failed", schedule_id)
    return made


def fire(schedule_id: str, now=None) -> list[ScheduleFiring]:
    """Deal with the due ticks of one schedule (see the module's docstring)."""
    now = now or timezone.now()
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update(of=("self",))
            .select_related("created_by", "project", "base_task", "target_project")
            .filter(pk=schedule_id, paused=False, next_tick__lte=now)
            .first()
        )
        if schedule is None:
            return []  # another server worker fired it, or it was paused meanwhile
        cap = max(1, settings.SCHEDULE_MAX_CATCHUP)
        ticks, total = timing.recent(schedule, schedule.covered_until, now, cap)
        ticks.reverse()  # oldest first
        plan = _plan(schedule, ticks, total, now)
        firings = [_fire_tick(schedule, tick, skipped, why) for tick, skipped, why in plan]
        schedule.covered_until = now
        schedule.next_tick = _next(schedule, now)
        schedule.save(update_fields=["covered_until", "next_tick"])
    return [firing for firing in firings if firing is not None]


def _plan(schedule: Schedule, ticks: list, total: int, now) -> list[tuple]:
    """(tick, skipped, reason) for each tick to record, oldest first."""
    if not ticks:
        return []
    grace = timedelta(seconds=settings.SCHEDULE_MISFIRE_GRACE_SECONDS)
    late = [tick for tick in ticks if now - tick > grace]
    beyond = total - len(ticks)  # older due ticks past the cap (cron: at least one)
    if schedule.missed == Missed.RUN_ONCE:
        others = len(ticks) - 1 + beyond
        if not others:
            return [(ticks[-1], False, "")]
        count = f"{others}" if not (beyond and schedule.cron) else f"more than {others}"
        return [(ticks[-1], False, f"run once for this tick and {count} missed before it")]
    if schedule.missed == Missed.RUN_ALL:
        plan = [(tick, False, "missed, run late" if tick in late else "") for tick in ticks]
        if beyond:
            count = "older" if schedule.cron else f"{beyond} older"
            reason = (
                f"{count} missed ticks dropped: at most {len(ticks)} run (SCHEDULE_MAX_CATCHUP)"
            )
            plan.insert(0, (ticks[0] - timedelta(microseconds=1), True, reason))
        return plan
    plan = [(tick, False, "") for tick in ticks if tick not in late]
    if late:
        count = (
            f"{len(late) + beyond}" if not (beyond and schedule.cron) else f"more than {len(late)}"
        )
        reason = (
            f"{count} tick(s) from {late[0]:%Y-%m-%d %H:%M:%S} UTC on passed while no server "
            "worker ran: skipped (missed: skip)"
        )
        plan.insert(0, (late[-1], True, reason))
    return plan


def _fire_tick(schedule: Schedule, tick, skipped: bool, reason: str) -> ScheduleFiring | None:
    """The firing row of one tick, then (in the same transaction) what it starts."""
    state = FiringState.SKIPPED if skipped else FiringState.PENDING
    try:
        with transaction.atomic():
            firing = ScheduleFiring.objects.create(
                schedule=schedule, tick=tick, state=state, reason=reason
            )
    except IntegrityError:
        return None  # fired already: the unique row says so
    if skipped:
        return firing
    running = _running(schedule)
    if running is not None and schedule.overlap == Overlap.SKIP:
        return _finish(firing, FiringState.SKIPPED, _still_running(running, "skip"))
    if schedule.overlap == Overlap.QUEUE:
        waiting = schedule.firings.filter(state=FiringState.WAITING).exclude(pk=firing.pk)
        if running is not None or waiting.exists():
            if waiting.count() >= settings.SCHEDULE_MAX_WAITING:
                return _finish(
                    firing,
                    FiringState.SKIPPED,
                    f"{settings.SCHEDULE_MAX_WAITING} firings already wait for the run "
                    "before them (SCHEDULE_MAX_WAITING)",
                )
            why = _still_running(running, "queue") if running else "after earlier firings"
            return _finish(firing, FiringState.WAITING, why)
    return start_firing(schedule, firing)


def _still_running(firing: ScheduleFiring, policy: str) -> str:
    return (
        f"the run started at {firing.tick:%Y-%m-%d %H:%M:%S} UTC ({firing.task_id}) is still "
        f"running (overlap: {policy})"
    )


def _running(schedule: Schedule) -> ScheduleFiring | None:
    """The newest firing whose run has not ended, if any."""
    return (
        schedule.firings.filter(state=FiringState.LAUNCHED, task__status__in=ACTIVE_STATES)
        .order_by("-tick")
        .first()
    )


def _finish(firing, state: str, reason: str = "", started=None):
    firing.state = state
    firing.reason = reason
    fields = ["state", "reason"]
    if started is not None:
        firing.task, firing.run, firing.launched = started.task, started.run, timezone.now()
        fields += ["task", "run", "launched"]
    firing.save(update_fields=fields)
    return firing


def start_firing(schedule: Schedule, firing: ScheduleFiring) -> ScheduleFiring:
    """Start what the schedule names, in a savepoint: a refusal (the base task is gone, the
    pipeline has no server-run definition) is recorded on the firing with its reason."""
    marker = {"schedule": schedule.pk, "tick": firing.tick.isoformat()}
    try:
        with transaction.atomic():
            started = launch.start(schedule, user=schedule.created_by, subject=None, marker=marker)
    except DatabaseError:
        raise
    except DomainError as error:
        return _finish(firing, FiringState.FAILED, error.message)
    except Exception as error:  # noqa: BLE001 - recorded, so the tick is not retried for ever
        logger.exception("schedule %s could not start its tick %s", schedule.pk, firing.tick)
        return _finish(firing, FiringState.FAILED, f"internal error: {error}")
    return _finish(firing, FiringState.LAUNCHED, firing.reason, started)


# ---------------------------------------------------------------- waiting firings (overlap: queue)


def release_waiting(schedule_id: str) -> ScheduleFiring | None:
    """Start the oldest waiting firing of a schedule once nothing it started still runs."""
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update(of=("self",))
            .select_related("created_by", "project", "base_task", "target_project")
            .filter(pk=schedule_id)
            .first()
        )
        # Paused: nothing starts; the waiting firings start once it is resumed.
        if schedule is None or schedule.paused or _running(schedule) is not None:
            return None
        firing = schedule.firings.filter(state=FiringState.WAITING).order_by("tick").first()
        if firing is None:
            return None
        firing.reason = f"waited for the run before it ({firing.reason})"
        return start_firing(schedule, firing)


def release_all_waiting() -> int:
    ids = set(
        ScheduleFiring.objects.filter(state=FiringState.WAITING).values_list(
            "schedule_id", flat=True
        )
    )
    released = 0
    for schedule_id in ids:
        try:
            released += release_waiting(schedule_id) is not None
        except Exception:  # noqa: BLE001 - one schedule must not stop the others
            logger.exception("releasing waiting firings of schedule %s failed", schedule_id)
    return released
