"""Ingesting what a running task reports: scalars, plots, console text. Batched, idempotent."""

import math

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import hooks, sql
from .errors import InvalidInput, TooLarge
from .execution import append_log
from .models import DebugSample, Plot, ReceivedBatch, Scalar, Task
from .storage import delete_key, safe_filename, sample_key, save_bytes

MAX_EVENTS_PER_BATCH = 50_000
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
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"scalar value {value!r} is not a number") from error


def ingest_events(task: Task, events: list, batch_id: str = "") -> dict:
    """Store a batch exactly once: a known batch id is acknowledged without storing it again,
    and scalars and plots upsert by (title, series, iteration) in any case."""
    if batch_id and ReceivedBatch.objects.filter(task=task, batch_id=batch_id).exists():
        return {"scalars": 0, "plots": 0, "logs": 0, "duplicate": True}
    if not isinstance(events, list):
        raise InvalidInput("events must be a list")
    if len(events) > MAX_EVENTS_PER_BATCH:
        raise TooLarge(f"batch has {len(events)} events; the limit is {MAX_EVENTS_PER_BATCH}")
    now = timezone.now()
    # (title, series, iteration) -> value: the last report of a point in a batch wins.
    scalars: dict[tuple, float] = {}
    plots: dict[tuple, Plot] = {}
    logs: list[dict] = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise InvalidInput(f"event {index} is not an object")
        kind = event.get("type")
        title = event.get("title", "")
        series = event.get("series", "")
        # The common case (what the SDK sends) skips the conversions.
        if type(title) is not str or len(title) > 255:
            title = str(title)[:255]
        if type(series) is not str or len(series) > 255:
            series = str(series)[:255]
        iteration = event.get("iteration", 0)
        if type(iteration) is not int:
            try:
                iteration = int(iteration)
            except (TypeError, ValueError) as error:
                raise InvalidInput(f"event {index}: iteration must be an integer") from error
        if kind == "scalar":
            value = event.get("value")
            scalars[(title, series, iteration)] = value if type(value) is float else _float(value)
        elif kind == "plot":
            figure = event.get("figure")
            if not isinstance(figure, dict):
                raise InvalidInput(f"event {index}: plot figure must be an object")
            plots[(title, series, iteration)] = Plot(
                task=task, title=title, series=series, iteration=iteration, figure=figure
            )
        elif kind == "log":
            logs.append({"stream": event.get("stream", "stdout"), "text": event.get("text", "")})
        else:
            raise InvalidInput(f"event {index}: unknown type {kind!r} (scalar, plot, log)")
    with transaction.atomic():
        if scalars:
            _check_series_limit(task, scalars)
            _upsert_scalars(task, scalars, now)
            _update_last_metrics(task, scalars)
        if plots:
            Plot.objects.bulk_create(
                plots.values(),
                update_conflicts=True,
                unique_fields=["task", "title", "series", "iteration"],
                update_fields=["figure", "timestamp"],
            )
        if logs:
            append_log(task, logs)
        if batch_id:
            ReceivedBatch.objects.create(task=task, batch_id=batch_id[:64])
        if scalars:
            hooks.notify(hooks.SCALARS_REPORTED, task, scalars)
    return {"scalars": len(scalars), "plots": len(plots), "logs": len(logs)}


def _check_series_limit(task: Task, scalars: dict) -> None:
    incoming = {(title, series) for title, series, _ in scalars}
    existing = set(task.last_metrics or {})
    total = len(existing | {f"{t}/{s}" for t, s in incoming})
    if total > MAX_SERIES_PER_TASK:
        raise TooLarge(f"task would have {total} scalar series; limit is {MAX_SERIES_PER_TASK}")


def _upsert_scalars(task: Task, scalars: dict, now) -> None:
    """Insert or update points by (task, title, series, iteration), in one executemany.

    One plain INSERT ... ON CONFLICT statement (SQLite >= 3.24 and PostgreSQL) instead of
    bulk_create, whose per-row SQL compilation cost more than storing the rows.
    """
    if connection.vendor not in ("sqlite", "postgresql"):
        Scalar.objects.bulk_create(
            [
                Scalar(task=task, title=t, series=s, iteration=i, value=v, timestamp=now)
                for (t, s, i), v in scalars.items()
            ],
            batch_size=2000,
            update_conflicts=True,
            unique_fields=["task", "title", "series", "iteration"],
            update_fields=["value", "timestamp"],
        )
        return
    stamp = connection.ops.adapt_datetimefield_value(now)
    task_id = task.pk
    rows = [(task_id, t, s, i, v, stamp) for (t, s, i), v in scalars.items()]
    with connection.cursor() as cursor:
        cursor.executemany(sql.UPSERT_SCALARS.text, rows)


def _update_last_metrics(task: Task, scalars: dict) -> None:
    """Keep the last value of every series on the task, for tables and comparisons."""
    task = Task.objects.select_for_update().get(pk=task.pk)
    metrics = dict(task.last_metrics or {})
    for (title, series, iteration), value in scalars.items():
        key = f"{title}/{series}"
        current = metrics.get(key)
        if current is None or iteration >= current["iteration"]:
            metrics[key] = {
                "iteration": iteration,
                "value": None if value is None or not math.isfinite(value) else value,
                "raw": str(value),
            }
    Task.objects.filter(pk=task.pk).update(last_metrics=metrics, last_update=timezone.now())


def store_debug_sample(task: Task, *, title: str, series: str, iteration: int, uploaded):
    """Upsert an image by (title, series, iteration); its bytes go to artifact storage."""
    if uploaded.size > 50 * 1024 * 1024:
        raise TooLarge("debug samples are limited to 50 MB")
    content_type = getattr(uploaded, "content_type", "") or "image/png"
    if not content_type.startswith("image/"):
        raise InvalidInput("debug samples must be images")
    with transaction.atomic():
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
        sample.content_type = content_type
        sample.timestamp = timezone.now()
        sample.save()
    if old_key and old_key != key:
        delete_key(old_key)
    return sample


def link_debug_sample(task: Task, *, title: str, series: str, iteration: int, storage_key: str):
    """Upsert an image by (title, series, iteration) whose bytes are already stored under
    `storage_key` (uploaded to ClearML's file server before the event naming them)."""
    sample, _ = DebugSample.objects.update_or_create(
        task=task,
        title=title[:255],
        series=series[:255],
        iteration=iteration,
        defaults={"storage_key": storage_key, "timestamp": timezone.now()},
    )
    return sample


def downsample(xs: list, ys: list, max_points: int) -> tuple[list, list]:
    """Every k-th point plus the last, so long series stay cheap to draw."""
    if max_points <= 0 or len(xs) <= max_points:
        return xs, ys
    step = -(-len(xs) // max_points)
    keep = list(range(0, len(xs), step))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]
