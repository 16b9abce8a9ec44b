"""Ingesting what a running task reports: scalars, single values, plots, console text
(batched, idempotent) and media (images, audio, video, HTML pages; stored or by URL)."""

import math
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import hooks, limits, scalar_rollup, sql
from .errors import InvalidInput, TooLarge
from .execution import append_log
from .models import DebugSample, Plot, Scalar, SingleValue, Task
from .scalar_rollup import SINGLE_VALUE_ITERATION
from .storage import delete_key, safe_filename, sample_key, save_bytes

MAX_EVENTS_PER_BATCH = 50_000
INT64_MIN, INT64_MAX = limits.INT64_MIN, limits.INT64_MAX
MAX_SERIES_PER_TASK = getattr(settings, "MAX_SERIES_PER_TASK", 2_000)
# The upsert key first, then what an upsert replaces (see _upsert_scalars).


def _float(value) -> float:
    """JSON has no NaN/Inf; the SDK sends them as the strings "NaN", "Infinity", "-Infinity"."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        mapped = {"nan": math.nan, "infinity": math.inf, "inf": math.inf, "-infinity": -math.inf}
        if value.lower() in mapped:
            return mapped[value.lower()]
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise InvalidInput(f"scalar value {value!r} is not a number") from error


def ingest_events(task: Task, events: list, batch_id: str = "") -> dict:
    """Store a batch exactly once: a known batch id is acknowledged without storing it again,
    and scalars and plots upsert by (title, series, iteration) in any case."""
    duplicate = {"scalars": 0, "plots": 0, "logs": 0, "duplicate": True}
    batch_id = (batch_id or "")[:64]
    if batch_id and sql.batch_recorded(task.pk, batch_id):
        return duplicate
    if not isinstance(events, list):
        raise InvalidInput("events must be a list")
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise TooLarge(f"batch has {len(events)} events; the limit is {MAX_EVENTS_PER_BATCH}")
    now = timezone.now()
    # (title, series, iteration) -> value: the last report of a point in a batch wins.
    scalars: dict[tuple, float] = {}
    plots: dict[tuple, Plot] = {}
    singles: dict[str, float] = {}
    logs: list[dict] = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise InvalidInput(f"event {index} is not an object")
        kind = event.get("type")
        title = event.get("title", "")
        series = event.get("series", "")
        # The common case (what the SDK sends) skips the conversions.
        if type(title) is not str or len(title) > 255 or "\x00" in title:
            title = str(title)[:255].replace("\x00", "")
        if type(series) is not str or len(series) > 255 or "\x00" in series:
            series = str(series)[:255].replace("\x00", "")
        iteration = event.get("iteration", 0)
        if type(iteration) is not int or not INT64_MIN <= iteration <= INT64_MAX:
            try:
                iteration = limits.to_integer("iteration", iteration)
            except InvalidInput as error:
                raise InvalidInput(
                    f"event {index}: iteration must be an integer from {INT64_MIN} to {INT64_MAX}",
                    field="iteration",
                ) from error
        if kind == "scalar" and iteration == SINGLE_VALUE_ITERATION:
            # ClearML's report_single_value (and older SDKs'): a value of the run, kept by
            # its series' name, not a point at iteration -2**31.
            singles[series or title] = _float(event.get("value"))
        elif kind == "scalar":
            value = event.get("value")
            scalars[(title, series, iteration)] = value if type(value) is float else _float(value)
        elif kind == "plot":
            figure = event.get("figure")
            if not isinstance(figure, dict):
                raise InvalidInput(f"event {index}: plot figure must be an object")
            limits.json_value(f"event {index}: figure", figure, limits.FIGURE_MAX_BYTES)
            plots[(title, series, iteration)] = Plot(
                task=task,
                title=title,
                series=series,
                iteration=iteration,
                figure=figure,
                timestamp=_reported_at(index, event.get("timestamp_ms")),
            )
        elif kind == "single_value":
            name = str(event.get("name") or series)[:255]
            if not name:
                raise InvalidInput(f"event {index}: a single value needs a name")
            singles[name] = _float(event.get("value"))
        elif kind == "log":
            logs.append(
                {
                    "stream": event.get("stream", "stdout"),
                    "text": event.get("text", ""),
                    "timestamp": event.get("timestamp"),
                    "iteration": event.get("iteration"),
                    "metric": event.get("metric"),
                }
            )
        else:
            raise InvalidInput(
                f"event {index}: unknown type {kind!r} (scalar, single_value, plot, log)"
            )
    with transaction.atomic():
        if scalars or plots:
            # The task row lock orders this task's batches: each one's seq is above every
            # seq already committed, so a reader at seq N misses nothing it asks for later.
            task = Task.objects.select_for_update().get(pk=task.pk)
        if batch_id and not sql.record_batch(task.pk, batch_id, now):
            return duplicate  # a copy sent at the same time was stored first
        if scalars:
            _check_series_limit(task, scalars)
            _upsert_scalars(task, scalars, now, next_seq(task, Scalar))
            scalar_rollup.record(task, scalars, now)
            _update_last_metrics(task, scalars)
        if plots:
            seq = next_seq(task, Plot)
            for plot in plots.values():
                plot.seq, plot.timestamp = seq, plot.timestamp or now
            Plot.objects.bulk_create(
                plots.values(),
                update_conflicts=True,
                unique_fields=["task", "title", "series", "iteration"],
                update_fields=["figure", "timestamp", "seq"],
            )
        if singles:
            _store_single_values(task, singles, now)
        if logs:
            append_log(task, logs)
        if scalars:
            hooks.notify(hooks.SCALARS_REPORTED, task, scalars)
    return {
        "scalars": len(scalars),
        "plots": len(plots),
        "logs": len(logs),
        "single_values": len(singles),
    }


# Epoch milliseconds of years 1970 to 9999: what a report may say it was made at.
LAST_MILLISECOND = 253_402_300_799_999


def _reported_at(index: int, milliseconds):
    """When a plot says it was made (ClearML's events carry it, and its readers compare
    it), or None for the time it is stored."""
    if milliseconds is None:
        return None
    stamp = limits.to_integer(f"event {index}: timestamp_ms", milliseconds, 0, LAST_MILLISECOND)
    return datetime.fromtimestamp(0, tz=UTC) + timedelta(milliseconds=stamp)


def _store_single_values(task: Task, values: dict[str, float], now) -> None:
    known = set(SingleValue.objects.filter(task=task).values_list("name", flat=True))
    if len(known | set(values)) > MAX_SERIES_PER_TASK:
        raise TooLarge(f"task would have more than {MAX_SERIES_PER_TASK} single values")
    SingleValue.objects.bulk_create(
        [SingleValue(task=task, name=n, value=v, timestamp=now) for n, v in values.items()],
        update_conflicts=True,
        unique_fields=["task", "name"],
        update_fields=["value", "timestamp"],
    )


def single_values(task: Task) -> dict[str, float | None]:
    """{name: value} of a task's single values (NaN and infinities as None)."""
    return {
        name: value if value is not None and math.isfinite(value) else None
        for name, value in task.single_values.order_by("name").values_list("name", "value")
    }


def _check_series_limit(task: Task, scalars: dict) -> None:
    incoming = {(title, series) for title, series, _ in scalars}
    existing = set(task.last_metrics or {})
    total = len(existing | {f"{t}/{s}" for t, s in incoming})
    if total > MAX_SERIES_PER_TASK:
        raise TooLarge(f"task would have {total} scalar series; limit is {MAX_SERIES_PER_TASK}")


def next_seq(task: Task, model) -> int:
    """The seq of the batch being stored for `task` (whose row the caller holds locked):
    one above the task's highest, read from the (task, seq) index."""
    return (sql.highest_seq(model, task.pk) or 0) + 1


def _upsert_scalars(task: Task, scalars: dict, now, seq: int) -> None:
    """Insert or update points by (task, title, series, iteration), in one executemany.

    One plain INSERT ... ON CONFLICT statement (SQLite >= 3.24 and PostgreSQL) instead of
    bulk_create, whose per-row SQL compilation cost more than storing the rows.
    """
    if connection.vendor not in ("sqlite", "postgresql"):
        Scalar.objects.bulk_create(
            [
                Scalar(task=task, title=t, series=s, iteration=i, value=v, timestamp=now, seq=seq)
                for (t, s, i), v in scalars.items()
            ],
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["task", "title", "series", "iteration"],
            update_fields=["value", "timestamp", "seq"],
        )
        return
    stamp = connection.ops.adapt_datetimefield_value(now)
    task_id = task.pk
    rows = [(task_id, t, s, i, v, stamp, seq) for (t, s, i), v in scalars.items()]
    with connection.cursor() as cursor:
        cursor.executemany(sql.UPSERT_SCALARS.text, rows)


def _update_last_metrics(task: Task, scalars: dict) -> None:
    """Keep the last value of every series on the task, for tables and comparisons (the
    caller holds the task row locked)."""
    metrics = dict(task.last_metrics or {})
    for (title, series, iteration), value in scalars.items():
        key = f"{title}/{series}"
        before = metrics.get(key) or {}
        finite = None if value is None or not math.isfinite(value) else value
        if not before or iteration >= before["iteration"]:
            current = {"iteration": iteration, "value": finite, "raw": str(value)}
        else:
            current = {k: before[k] for k in ("iteration", "value", "raw")}
        # The lowest and highest value ever reported and where, whatever order the points
        # came in; the first iteration's value; how many finite reports and their sum.
        for name, better in (("min", float.__lt__), ("max", float.__gt__)):
            known = before.get(name)
            if finite is not None and (known is None or better(float(finite), float(known))):
                current[name], current[f"{name}_iteration"] = finite, iteration
            else:
                current[name] = known
                current[f"{name}_iteration"] = before.get(f"{name}_iteration")
        if not before or iteration < before.get("first_iteration", before["iteration"]):
            current["first_iteration"], current["first_value"] = iteration, finite
        else:
            current["first_iteration"] = before.get("first_iteration", before["iteration"])
            current["first_value"] = before.get("first_value", before.get("value"))
        current["count"] = before.get("count", 0) + (finite is not None)
        current["total"] = before.get("total", 0.0) + (finite or 0.0)
        metrics[key] = current
    text, values = sql.update(
        Task, {"last_metrics": metrics, "last_update": timezone.now()}, {"pk": task.pk}
    )
    with connection.cursor() as cursor:
        cursor.execute(text, values)


# What media a task may report, by content type, and the largest file of each.
MEDIA_TYPES = ("image/", "audio/", "video/", "text/html")
MAX_MEDIA_BYTES = settings.MAX_MEDIA_BYTES
# Served inline as what they are: raster images, audio and video, which carry no script.
INLINE_PREFIXES = ("image/png", "image/jpeg", "image/gif", "image/webp", "audio/", "video/")
# Served to the browser with no origin of its own: it may run its script, but can read
# nothing of the dashboard's (an SVG or an HTML page, e.g. a Plotly or Bokeh export).
SANDBOXED = ("image/svg+xml", "text/html")
SANDBOX_POLICY = "sandbox allow-scripts"


def media_kind(content_type: str) -> str:
    """image, audio, video or html: how the dashboard shows a sample."""
    if content_type.startswith("text/html"):
        return "html"
    return content_type.split("/", 1)[0] if "/" in content_type else "image"


def serving(content_type: str) -> tuple[str, dict]:
    """(the Content-Type to send, extra headers) for a stored sample's bytes: one rule for
    every door that serves them (the dashboard and the API)."""
    headers = {"X-Content-Type-Options": "nosniff"}
    content_type = (content_type or "").split(";")[0].strip().lower()
    if content_type.startswith(INLINE_PREFIXES):
        return content_type, headers
    if content_type in SANDBOXED:
        return content_type, {**headers, "Content-Security-Policy": SANDBOX_POLICY}
    return "application/octet-stream", {**headers, "Content-Disposition": "attachment"}


def _media_type(content_type: str) -> str:
    content_type = (content_type or "").split(";")[0].strip().lower() or "image/png"
    if not content_type.startswith(MEDIA_TYPES):
        raise InvalidInput(
            "media must be an image, audio, video or an HTML page",
            content_type=content_type,
        )
    return content_type


def store_debug_sample(
    task: Task, *, title: str, series: str, iteration: int, uploaded, max_history: int = 0
):
    """Upsert media by (title, series, iteration); its bytes go to artifact storage.

    `max_history` > 0 keeps only that many of the newest iterations of the title/series
    (ClearML's max_image_history), removing the older ones and their bytes.
    """
    if uploaded.size > MAX_MEDIA_BYTES:
        raise TooLarge(f"media files are limited to {MAX_MEDIA_BYTES} bytes")
    content_type = _media_type(getattr(uploaded, "content_type", ""))
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)  # orders seq, as above
        sample, _ = DebugSample.objects.get_or_create(
            task=task,
            title=title[:255],
            series=series[:255],
            iteration=iteration,
            defaults={"storage_key": "", "content_type": content_type},
        )
        old_key = sample.storage_key
        key = save_bytes(sample_key(task.id, sample.id, safe_filename(uploaded.name)), uploaded)
        sample.storage_key = key
        sample.url = sample.location = ""
        sample.content_type = content_type
        sample.timestamp = timezone.now()
        sample.seq = next_seq(task, DebugSample)
        sample.save()
    if old_key and old_key != key:
        delete_key(old_key)
    _keep_history(sample, max_history)
    return sample


def link_media_url(
    task: Task,
    *,
    title: str,
    series: str,
    iteration: int,
    url: str,
    content_type: str = "",
    max_history: int = 0,
):
    """Upsert media that is already at `url` (`report_media(url=...)`): the URL is kept,
    and shown or linked as it is; nothing is fetched."""
    url = str(url or "").strip()
    if not url.lower().startswith(("http://", "https://")) or len(url) > 2048:
        raise InvalidInput("a media URL must be an http(s) URL of at most 2048 characters")
    content_type = _media_type(content_type or _guess_type(url))
    sample = _upsert_elsewhere(task, title, series, iteration, content_type, url=url)
    _keep_history(sample, max_history)
    return sample


def _upsert_elsewhere(task, title, series, iteration, content_type, *, url="", location=""):
    """A sample whose bytes are not ours (at `url`, or only known by `location`); the bytes
    a previous sample at that place kept here are deleted once it is replaced."""
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)  # orders seq, as above
        sample = DebugSample.objects.filter(
            task=task, title=title[:255], series=series[:255], iteration=iteration
        ).first()
        old_key = sample.storage_key if sample else ""
        sample, _ = DebugSample.objects.update_or_create(
            task=task,
            title=title[:255],
            series=series[:255],
            iteration=iteration,
            defaults={
                "storage_key": "",
                "url": url,
                "location": location,
                "content_type": content_type,
                "timestamp": timezone.now(),
                # Without it the Debug samples tab (which reads by seq) never lists it.
                "seq": next_seq(task, DebugSample),
            },
        )
    delete_key(old_key)
    return sample


def link_media_location(
    task: Task, *, title: str, series: str, iteration: int, location: str, content_type: str = ""
):
    """Upsert media another client stored where this server can neither fetch nor link it
    (`s3://...`, a file path): its location is kept as text and shown, never followed. An
    empty one records that the client reported media without saying where it is."""
    location = str(location or "").strip()
    if len(location) > 2048 or "\x00" in location:
        raise InvalidInput("a media location must be at most 2048 characters")
    content_type = _media_type(content_type or _guess_type(location))
    return _upsert_elsewhere(task, title, series, iteration, content_type, location=location)


def newer_at_same_place(task: Task, *, title: str, series: str, iteration: int, place: str):
    """Whether a later iteration of title/series is kept at this URL or location: ClearML's
    SDK names its files by iteration modulo its history size, so that one overwrote it."""
    return (
        DebugSample.objects.filter(task=task, title=title[:255], series=series[:255])
        .filter(iteration__gt=iteration)
        .filter(Q(url=place) | Q(location=place))
        .exists()
    )


def forget_overwritten(sample: DebugSample) -> None:
    """Remove the earlier iterations of a sample's title/series kept at its URL or location:
    the file there now holds this one (see newer_at_same_place)."""
    place = sample.url or sample.location
    if not place:
        return
    DebugSample.objects.filter(
        task_id=sample.task_id,
        title=sample.title,
        series=sample.series,
        iteration__lt=sample.iteration,
        storage_key="",
    ).filter(Q(url=place) | Q(location=place)).delete()


def _guess_type(url: str) -> str:
    import mimetypes

    guessed, _ = mimetypes.guess_type(url.split("?", 1)[0])
    return guessed or "image/png"


def _keep_history(sample: DebugSample, max_history: int) -> None:
    if not max_history or max_history <= 0:
        return
    older = DebugSample.objects.filter(
        task_id=sample.task_id, title=sample.title, series=sample.series
    ).order_by("-iteration")[max_history:]
    for old in list(older):
        delete_key(old.storage_key)
        old.delete()


def link_debug_sample(task: Task, *, title: str, series: str, iteration: int, storage_key: str):
    """Upsert an image by (title, series, iteration) whose bytes are already stored under
    `storage_key` (uploaded to ClearML's file server before the event naming them)."""
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)  # orders seq, as above
        sample, _ = DebugSample.objects.update_or_create(
            task=task,
            title=title[:255],
            series=series[:255],
            iteration=iteration,
            defaults={
                "storage_key": storage_key,
                "url": "",
                "location": "",
                "timestamp": timezone.now(),
                "seq": next_seq(task, DebugSample),
            },
        )
    return sample


def downsample(xs: list, ys: list, max_points: int) -> tuple[list, list]:
    """At most `max_points` points that draw like all of them: the points cut into
    max_points // 4 runs, each kept as its first, lowest, highest and last point (M4, as
    scalar_rollup keeps charts), so no spike or dip is dropped, and the last value stays."""
    if max_points <= 0 or len(xs) <= max_points:
        return xs, ys
    runs = max(1, max_points // 4)
    size = -(-len(xs) // runs)
    keep: list[int] = []
    for start in range(0, len(xs), size):
        end = min(start + size, len(xs))
        # Values may come as JSON's stand-ins ("NaN", "Infinity"): those are no extremes.
        finite = [
            i for i in range(start, end) if type(ys[i]) in (int, float) and math.isfinite(ys[i])
        ]
        picked = {start, end - 1}
        if finite:
            picked.add(min(finite, key=ys.__getitem__))
            picked.add(max(finite, key=ys.__getitem__))
        keep.extend(sorted(picked))
    return [xs[i] for i in keep], [ys[i] for i in keep]
