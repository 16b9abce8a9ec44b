"""When a schedule's ticks fall: pure functions of its cron expression or interval and its
time zone, in UTC out.

Cron expressions are read by cronsim (the library healthchecks.io is built on): five fields,
or six with seconds first, evaluated in the schedule's time zone (zoneinfo), so "30 2 * * *"
is 02:30 local time whatever the season. Around clock changes the rules are cronie's: a
fixed time the clocks skip fires at the first time after the gap, a fixed time that happens
twice fires once, and ticks with wildcards or steps in the hour fire in both copies of the
repeated hour.
"""

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from webapp.core.errors import InvalidInput

MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 366 * 24 * 3600.0


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput(f"unknown time zone {name!r}", field="timezone") from error


def check(cron: str, interval_seconds: float | None, timezone_name: str) -> None:
    """Refuse a schedule whose timing cannot be evaluated, naming the field."""
    zone(timezone_name)
    if bool(cron) == (interval_seconds is not None):
        raise InvalidInput("give either a cron expression or an interval", field="cron")
    if cron:
        try:
            next(CronSim(cron, datetime.now(UTC)))
        except CronSimError as error:
            raise InvalidInput(f"cron: {error}", field="cron") from error
        except StopIteration as error:
            raise InvalidInput("cron: the expression never matches", field="cron") from error
    elif not (
        isinstance(interval_seconds, int | float)
        and math.isfinite(interval_seconds)
        and MIN_INTERVAL_SECONDS <= interval_seconds <= MAX_INTERVAL_SECONDS
    ):
        raise InvalidInput(
            f"interval_seconds must be from {MIN_INTERVAL_SECONDS:g} to {MAX_INTERVAL_SECONDS:g}",
            field="interval_seconds",
        )


def upcoming(schedule, after: datetime, count: int) -> list[datetime]:
    """The first `count` ticks strictly after `after`, oldest first."""
    if schedule.cron:
        ticks = CronSim(schedule.cron, after.astimezone(zone(schedule.timezone)))
        return [tick.astimezone(UTC) for _, tick in zip(range(count), ticks, strict=False)]
    step = timedelta(seconds=schedule.interval_seconds)
    k = max(0, math.floor((after - schedule.anchor) / step) + 1)
    first = schedule.anchor + k * step
    while first <= after:  # float rounding
        first += step
    return [first + i * step for i in range(count)]


def recent(schedule, after: datetime, until: datetime, limit: int) -> tuple[list[datetime], int]:
    """The ticks in (after, until], newest first, at most `limit` of them; and how many
    there are in all (counted for intervals, at least limit + 1 for cron past the limit)."""
    if schedule.cron:
        found = []
        # cronsim walks back from strictly before its start: start a second later.
        start = (until + timedelta(seconds=1)).astimezone(zone(schedule.timezone))
        for tick in CronSim(schedule.cron, start, reverse=True):
            tick = tick.astimezone(UTC)
            if tick > until:
                continue
            if tick <= after or len(found) > limit:
                break
            found.append(tick)
        return found[:limit], len(found)
    step = timedelta(seconds=schedule.interval_seconds)
    if until < schedule.anchor + step:
        return [], 0
    last = schedule.anchor + math.floor((until - schedule.anchor) / step) * step
    while last > until:
        last -= step
    first = upcoming(schedule, after, 1)[0]
    total = 0 if first > last else round((last - first) / step) + 1
    return [last - i * step for i in range(min(total, limit))], total
