"""Scalar charts that cost the same at a thousand points as at a million.

Every series keeps min/max buckets (ScalarSeries, ScalarBucket): the points with
``iteration // bucket_width == index`` summarised by their first, lowest, highest and last
point, the M4 aggregation (Jugel et al., VLDB 2014). Drawn as a line, those four points per
bucket look like every point when a bucket is about a pixel wide, so spikes and dips stay
visible, which taking every k-th point loses. The width is a power of two, doubled (buckets
merged in pairs, exactly) while a series spans more than MAX_BUCKETS buckets, so a chart
reads at most 4 * MAX_BUCKETS points per series, however long the series.

Buckets are kept as points arrive (`record`, inside the report's transaction): points
after a bucket's last one merge into it; a point at or before it (an out-of-order or
repeated report) has its bucket recomputed from the stored points of that bucket alone.
"""

import math
from collections import defaultdict
from datetime import datetime

from django.db import connection

from . import sql
from .models import Scalar, ScalarBucket, ScalarSeries

MAX_BUCKETS = 1024
RANGES_PER_READ = 200
# ClearML's iteration for report_single_value(): a value, not a point of a curve.
SINGLE_VALUE_ITERATION = -(2**31)
SINGLE_VALUE_TITLE = "Summary"

BUCKET_FIELDS = (
    "count",
    "first_iteration", "first_value", "first_time",
    "min_iteration", "min_value", "min_time",
    "max_iteration", "max_value", "max_time",
    "last_iteration", "last_value", "last_time",
)  # fmt: skip


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def summarise(points: list[tuple]) -> dict:
    """A bucket of (iteration, value, time) points sorted by iteration (at least one)."""
    first, last = points[0], points[-1]
    low = high = None
    for point in points:
        if not _finite(point[1]):
            continue
        if low is None or point[1] < low[1]:
            low = point
        if high is None or point[1] > high[1]:
            high = point
    low, high = low or first, high or first
    return {
        "count": len(points),
        "first_iteration": first[0], "first_value": first[1], "first_time": first[2],
        "min_iteration": low[0], "min_value": low[1], "min_time": low[2],
        "max_iteration": high[0], "max_value": high[1], "max_time": high[2],
        "last_iteration": last[0], "last_value": last[1], "last_time": last[2],
    }  # fmt: skip


def merge(before: dict, after: dict) -> dict:
    """One bucket of two whose points do not interleave (`before`'s all come first)."""
    merged = dict(before)
    merged["count"] = before["count"] + after["count"]
    for key in ("last_iteration", "last_value", "last_time"):
        merged[key] = after[key]
    if _finite(after["min_value"]) and (
        not _finite(before["min_value"]) or after["min_value"] < before["min_value"]
    ):
        for key in ("min_iteration", "min_value", "min_time"):
            merged[key] = after[key]
    if _finite(after["max_value"]) and (
        not _finite(before["max_value"]) or after["max_value"] > before["max_value"]
    ):
        for key in ("max_iteration", "max_value", "max_time"):
            merged[key] = after[key]
    return merged


def width_for(first: int, last: int, width: int = 1) -> int:
    """The smallest power-of-two multiple of `width` giving at most MAX_BUCKETS buckets."""
    while last // width - first // width + 1 > MAX_BUCKETS:
        width *= 2
    return width


def drawn_points(bucket: dict) -> list[tuple]:
    """A bucket's first, lowest, highest and last point, in order, each once."""
    seen: dict[int, tuple] = {}
    for kind in ("first", "min", "max", "last"):
        iteration = bucket[f"{kind}_iteration"]
        seen.setdefault(iteration, (iteration, bucket[f"{kind}_value"], bucket[f"{kind}_time"]))
    return [seen[i] for i in sorted(seen)]


def bucket_all(points: list[tuple]) -> tuple[int, dict[int, dict]]:
    """A whole series' (iteration, value, time) points, sorted: its width and buckets."""
    width = width_for(points[0][0], points[-1][0])
    groups: dict[int, list] = defaultdict(list)
    for point in points:
        groups[point[0] // width].append(point)
    return width, {index: summarise(group) for index, group in groups.items()}


# ---------------------------------------------------------------- keeping buckets


def _read_buckets(series: ScalarSeries, low=None, high=None) -> dict[int, dict]:
    rows = ScalarBucket.objects.filter(series=series)
    if low is not None:
        rows = rows.filter(index__gte=low, index__lte=high)
    return {
        index: dict(zip(BUCKET_FIELDS, values, strict=True))
        for index, *values in rows.order_by("index").values_list("index", *BUCKET_FIELDS)
    }


def _write_buckets(series: ScalarSeries, buckets: dict[int, dict]) -> None:
    _write_all([(series, buckets)])


def _write_all(written: list[tuple[ScalarSeries, dict[int, dict]]]) -> None:
    """Insert or replace buckets by (series, index), one executemany (sql.py) for every
    series of a batch: model instances and the ORM's upsert cost several times the
    statement itself here."""
    if connection.vendor not in ("sqlite", "postgresql"):
        ScalarBucket.objects.bulk_create(
            [
                ScalarBucket(series=series, index=i, **values)
                for series, buckets in written
                for i, values in buckets.items()
            ],
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["series", "index"],
            update_fields=list(BUCKET_FIELDS),
        )
        return
    rows = [
        (series.pk, index, *(values[name] for name in BUCKET_FIELDS))
        for series, buckets in written
        for index, values in buckets.items()
    ]
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(sql.UPSERT_SCALAR_BUCKETS.text, rows)


def _read_ranges(ranges: list[tuple[ScalarSeries, int, int]]) -> dict[int, dict[int, dict]]:
    """The buckets of several series, each within its own index range, in one query:
    {series pk: {index: bucket}}."""
    found: dict[int, dict[int, dict]] = {row.pk: {} for row, _, _ in ranges}
    with connection.cursor() as cursor:
        # In chunks: a statement holds a bounded number of parameters on every database.
        for start in range(0, len(ranges), RANGES_PER_READ):
            chunk = ranges[start : start + RANGES_PER_READ]
            values = [value for row, low, high in chunk for value in (row.pk, low, high)]
            cursor.execute(sql.bucket_ranges_text(len(chunk), BUCKET_FIELDS), values)
            for series_id, index, *fields in cursor.fetchall():
                found[series_id][index] = dict(zip(BUCKET_FIELDS, fields, strict=True))
    return found


def _stored_points(series: ScalarSeries, low: int, high: int) -> list[tuple]:
    rows = Scalar.objects.filter(
        task_id=series.task_id,
        title=series.title,
        series=series.series,
        iteration__gte=low,
        iteration__lte=high,
    ).order_by("iteration")
    return [
        (iteration, value, stamp.timestamp())
        for iteration, value, stamp in rows.values_list("iteration", "value", "timestamp")
    ]


def _relevel(series: ScalarSeries, width: int) -> None:
    factor = width // series.bucket_width
    merged: dict[int, dict] = {}
    for index, current in _read_buckets(series).items():
        index //= factor
        merged[index] = merge(merged[index], current) if index in merged else current
    ScalarBucket.objects.filter(series=series).delete()
    _write_buckets(series, merged)
    series.bucket_width = width


def record(task, scalars: dict, now: datetime) -> None:
    """Fold a stored batch into its series' buckets. `scalars` maps (title, series,
    iteration) to the value just upserted; every point of a batch has the time `now`."""
    stamp = now.timestamp()
    by_series: dict[tuple, list] = defaultdict(list)
    for (title, series, iteration), value in scalars.items():
        if iteration != SINGLE_VALUE_ITERATION:
            by_series[(title, series)].append((iteration, value, stamp))
    if not by_series:
        return
    titles = {title for title, _ in by_series}
    known = {
        (row.title, row.series): row
        for row in ScalarSeries.objects.filter(task=task, title__in=titles)
    }
    created = []
    for (title, name), points in by_series.items():
        if (title, name) not in known:
            first, last = min(p[0] for p in points), max(p[0] for p in points)
            row = ScalarSeries(
                task=task,
                title=title,
                series=name,
                bucket_width=width_for(first, last),
                first_iteration=first,
                last_iteration=last,
            )
            known[(title, name)] = row
            created.append(row)
    ScalarSeries.objects.bulk_create(created, batch_size=500)
    fresh = {id(row) for row in created}
    grouped = []
    for key, points in by_series.items():
        row = known[key]
        points.sort()
        if id(row) not in fresh:
            first = min(row.first_iteration, points[0][0])
            last = max(row.last_iteration, points[-1][0])
            width = width_for(first, last, row.bucket_width)
            if width != row.bucket_width:
                _relevel(row, width)
            row.first_iteration, row.last_iteration = first, last
        groups: dict[int, list] = defaultdict(list)
        for point in points:
            groups[point[0] // row.bucket_width].append(point)
        grouped.append((row, groups))
    existing = _read_ranges([(row, min(groups), max(groups)) for row, groups in grouped])
    written = []
    for row, groups in grouped:
        buckets = _fold(row, groups, existing[row.pk])
        row.points += sum(
            values["count"] - existing[row.pk].get(index, {}).get("count", 0)
            for index, values in buckets.items()
        )
        written.append((row, buckets))
    _write_all(written)
    fields = ("bucket_width", "first_iteration", "last_iteration", "points")
    with connection.cursor() as cursor:
        cursor.executemany(
            sql.update_text(ScalarSeries, fields, ("pk",)),
            [
                sql.prepare(ScalarSeries, {f: getattr(row, f) for f in (*fields, "pk")})
                for row, _ in written
            ],
        )


def _fold(row: ScalarSeries, groups: dict[int, list], existing: dict[int, dict]) -> dict:
    """The buckets that a batch's points (grouped by bucket, each group sorted) fall in,
    as they are to be written."""
    width = row.bucket_width
    written = {}
    for index, group in groups.items():
        bucket = existing.get(index)
        if bucket is None:
            values = summarise(group)
        elif group[0][0] > bucket["last_iteration"]:
            values = merge(bucket, summarise(group))
        else:
            # A point at or before the bucket's last: recount the bucket from the stored
            # points (this batch's are stored already), a bounded read of one bucket.
            values = summarise(_stored_points(row, index * width, (index + 1) * width - 1))
        written[index] = values
    return written


# ---------------------------------------------------------------- reading charts


def charts(task, title: str | None = None) -> list[dict]:
    """Every series of `task` (or of one title) as drawn points: [{title, series, points,
    width, x, y, t}], sorted by title and series. Reads the buckets, never the points."""
    series_rows = ScalarSeries.objects.filter(task=task)
    if title is not None:
        series_rows = series_rows.filter(title=title)
    rows = {row.pk: row for row in series_rows}
    drawn: dict[int, dict] = {
        pk: {
            "title": row.title,
            "series": row.series,
            "points": row.points,
            "width": row.bucket_width,
            "x": [],
            "y": [],
            "t": [],
        }
        for pk, row in rows.items()
    }
    buckets = (
        ScalarBucket.objects.filter(series_id__in=list(rows))
        .order_by("series_id", "index")
        .values_list("series_id", *BUCKET_FIELDS)
    )
    for series_id, *values in buckets.iterator(chunk_size=5000):
        entry = drawn[series_id]
        for iteration, value, stamp in drawn_points(dict(zip(BUCKET_FIELDS, values, strict=True))):
            entry["x"].append(iteration)
            entry["y"].append(value if _finite(value) else None)
            entry["t"].append(round(stamp * 1000))
    return sorted(drawn.values(), key=lambda entry: (entry["title"], entry["series"]))


def single_values(task) -> list[dict]:
    """report_single_value() results for ClearML's Summary table: [{title, name, value}]."""
    return [
        {"title": SINGLE_VALUE_TITLE, "name": name, "value": value if _finite(value) else None}
        for name, value in task.single_values.order_by("name").values_list("name", "value")
    ]


def points_since(task, seq: int, limit: int) -> dict:
    """Points stored by the reports after batch `seq`, oldest first: {seq, points: [{title,
    series, x, y, t}], reset}. More than `limit` new points answers reset=True and none:
    redrawing the charts then costs less than sending every point."""
    rows = list(
        Scalar.objects.filter(task=task, seq__gt=seq)
        .order_by("seq", "title", "series", "iteration")
        .values_list("seq", "title", "series", "iteration", "value", "timestamp")[: limit + 1]
    )
    if len(rows) > limit:
        return {"seq": seq, "points": [], "reset": True}
    grouped: dict[tuple, dict] = {}
    for _, title, series, iteration, value, stamp in rows:
        entry = grouped.setdefault(
            (title, series), {"title": title, "series": series, "x": [], "y": [], "t": []}
        )
        entry["x"].append(iteration)
        entry["y"].append(value if _finite(value) else None)
        entry["t"].append(round(stamp.timestamp() * 1000))
    return {
        "seq": rows[-1][0] if rows else seq,
        "points": list(grouped.values()),
        "reset": False,
    }
