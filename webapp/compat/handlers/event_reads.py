"""events.* reads of scalars and of which metrics a task reported, and
projects.get_unique_metric_variants.

Charts come from the min/max buckets kept as points arrive (scalar_rollup), never from
every point; the raw points are read a bounded page at a time, in the order of the
(task, title, series, iteration) index; ClearML's averaged intervals (`samples`) are one
grouped aggregate in the database, at most `samples` rows a series.
"""

import hashlib
import math
from datetime import UTC, datetime

from django.db.models import Avg, F, Q

from webapp.core import scalar_rollup
from webapp.core.models import DebugSample, LogLine, Plot, Project, Scalar, ScalarSeries

from .. import scroll
from ..documents import extra_of, get_task, visible_tasks
from ..envelope import bad_request
from ..query import as_list
from ..registry import endpoint

# ClearML's own limit on the tasks one comparison reads.
MAX_TASKS = 100
MAX_RAW_BATCH = 10_000
MAX_SAMPLES = 10_000
MAX_METRICS = 1_000
MAX_VARIANT_PAIRS = 10_000
KEYS = ("iter", "timestamp", "iso_time")


def wanted_metrics(value) -> dict[str, list[str]] | None:
    """ClearML's `metrics: [{metric, variants}]` as {metric: [variants] (none: all)}."""
    if not value:
        return None
    if not isinstance(value, list) or len(value) > MAX_METRICS:
        raise bad_request(f"metrics must be a list of at most {MAX_METRICS} objects")
    wanted: dict[str, list[str]] = {}
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("metric", ""), str):
            raise bad_request("each of metrics must be an object with a metric name")
        variants = entry.get("variants") or []
        if not isinstance(variants, list) or len(variants) > MAX_METRICS:
            raise bad_request(f"variants must be a list of at most {MAX_METRICS} names")
        wanted.setdefault(entry.get("metric") or "", []).extend(str(v) for v in variants)
    return wanted


def metric_filter(wanted: dict | None, title: str = "title", series: str = "series") -> Q:
    if not wanted:
        return Q()
    condition = Q(pk__in=[])
    for metric, variants in wanted.items():
        one = Q(**{title: metric})
        if variants:
            one &= Q(**{f"{series}__in": variants})
        condition |= one
    return condition


def _key(call) -> str:
    key = call.get("key") or "iter"
    if key not in KEYS:
        raise bad_request(f"key must be one of {', '.join(KEYS)}")
    return key


def _samples(call) -> int:
    samples = call.get("samples", 0)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise bad_request("samples must be a non-negative integer")
    return min(samples, MAX_SAMPLES)


def iso_ms(stamp: int) -> str:
    return datetime.fromtimestamp(stamp / 1000, tz=UTC).isoformat()


def histogram(task, *, key: str = "iter", samples: int = 0, wanted=None) -> dict:
    """{title: {series: {name, x, y}}}: each series as its drawn points, or, when
    `samples` is fewer than its points and x is the iteration, ClearML's means of
    `samples` equal intervals (x: each interval's first iteration)."""
    result: dict = {}
    rows = {(r.title, r.series): r for r in ScalarSeries.objects.filter(task=task)}
    for chart in scalar_rollup.charts(task):
        title, name = chart["title"], chart["series"]
        if wanted is not None and (
            title not in wanted or (wanted[title] and name not in wanted[title])
        ):
            continue
        row = rows.get((title, name))
        if key == "iter" and samples and row is not None and row.points > samples:
            xs, ys = _interval_means(task, row, samples)
        elif key == "timestamp":
            xs, ys = chart["t"], chart["y"]
        elif key == "iso_time":
            xs, ys = [iso_ms(stamp) for stamp in chart["t"]], chart["y"]
        else:
            xs, ys = chart["x"], chart["y"]
        result.setdefault(title, {})[name] = {"name": name, "x": xs, "y": ys}
    return result


def _interval_means(task, row: ScalarSeries, samples: int) -> tuple[list, list]:
    span = row.last_iteration - row.first_iteration + 1
    interval = max(1, math.ceil(span / samples))
    means = (
        Scalar.objects.filter(task=task, title=row.title, series=row.series)
        .annotate(interval=F("iteration") / interval)
        .values("interval")
        .annotate(mean=Avg("value"))
        .order_by("interval")
    )
    xs, ys = [], []
    for entry in means[: samples + 1]:
        xs.append(entry["interval"] * interval)
        mean = entry["mean"]
        ys.append(mean if mean is not None and math.isfinite(mean) else None)
    return xs, ys


@endpoint("events.scalar_metrics_iter_histogram", verb="task.read")
def scalar_metrics_iter_histogram(call):
    """`Task.get_reported_scalars()` and the web UI's charts: {title: {series: {name, x,
    y}}}, x by `key` (iter, timestamp or iso_time)."""
    task = get_task(call, call.require("task"))
    return histogram(
        task, key=_key(call), samples=_samples(call), wanted=wanted_metrics(call.get("metrics"))
    )


def requested_tasks(call) -> list:
    """The requested tasks (a list or ClearML's comma-separated string), each visible."""
    ids = call.require("tasks")
    if isinstance(ids, str):
        ids = [part.strip() for part in ids.split(",") if part.strip()]
    if not isinstance(ids, list) or len(ids) > MAX_TASKS:
        raise bad_request(f"tasks must be a list of at most {MAX_TASKS} task ids")
    return [get_task(call, str(task_id)) for task_id in dict.fromkeys(ids)]


@endpoint("events.multi_task_scalar_metrics_iter_histogram", verb="task.read")
def multi_task_scalar_metrics_iter_histogram(call):
    """Comparing tasks' scalars: {metrics: {title: {series: {task id: {name, x, y}}}}}."""
    key, samples, wanted = _key(call), _samples(call), wanted_metrics(call.get("metrics"))
    metrics: dict = {}
    for task in requested_tasks(call):
        for title, series in histogram(task, key=key, samples=samples, wanted=wanted).items():
            for name, chart in series.items():
                entry = {**chart, "name": task.name}
                metrics.setdefault(title, {}).setdefault(name, {})[task.id] = entry
    return {"metrics": metrics}


@endpoint("events.scalar_metrics_iter_raw", verb="task.read")
def scalar_metrics_iter_raw(call):
    """Every point of one metric's series, a page at a time: {variants: {series: {y, iter
    (or the key's name)}}, returned, total, scroll_id}. The scroll id holds the last point
    sent, so the next page starts after it in the index's order (series, iteration)."""
    task = get_task(call, call.require("task"))
    if call.get("scroll_id"):
        scroll_id = call.get("scroll_id")
        state = scroll.decode("scalars_raw", scroll_id)
        if state.get("task") != task.id or not isinstance(state.get("metric"), dict):
            raise scroll.invalid(scroll_id)
        metric = state["metric"]
        size = scroll.optional_int(state, "batch_size", scroll_id) or MAX_RAW_BATCH
        after = state.get("after")
        total = scroll.optional_int(state, "total", scroll_id)
        key = state.get("key") if state.get("key") in KEYS else "iter"
        if call.get("batch_size"):
            size = _batch_size(call)
    else:
        metric = call.require("metric")
        if not isinstance(metric, dict):
            raise bad_request("metric must be an object: {metric, variants}")
        size, after, key = _batch_size(call), None, _key(call)
        total = None
    wanted = wanted_metrics([metric]) or {}
    series = ScalarSeries.objects.filter(Q(task=task) & metric_filter(wanted))
    if call.flag("count_total") and total is None:
        total = sum(series.values_list("points", flat=True)[:MAX_METRICS])
    points = Scalar.objects.filter(Q(task=task) & metric_filter(wanted))
    if after is not None:
        if not (
            isinstance(after, list)
            and len(after) == 2
            and isinstance(after[0], str)
            and type(after[1]) is int
            and abs(after[1]) < 2**63
        ):
            raise scroll.invalid(call.get("scroll_id"))
        last_series, last_iteration = after
        points = points.filter(
            Q(series__gt=last_series) | Q(series=last_series, iteration__gt=last_iteration)
        )
    rows = list(
        points.order_by("series", "iteration").values_list(
            "series", "iteration", "value", "timestamp"
        )[:size]
    )
    variants: dict = {}
    for name, iteration, value, stamp in rows:
        entry = variants.setdefault(name, {"y": [], key: []})
        entry["y"].append(value if value is not None and math.isfinite(value) else None)
        entry[key].append(_x_of(key, iteration, stamp))
    if rows:
        after = [rows[-1][0], rows[-1][1]]
    state = {
        "task": task.id,
        "metric": metric,
        "batch_size": size,
        "after": after,
        "total": total,
        "key": key,
    }
    return {
        "returned": len(rows),
        "total": total,
        "scroll_id": scroll.encode("scalars_raw", state),
        "variants": variants,
    }


def _batch_size(call) -> int:
    size = call.get("batch_size", MAX_RAW_BATCH)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise bad_request("batch_size must be a non-negative integer")
    return min(size or MAX_RAW_BATCH, MAX_RAW_BATCH)


def _x_of(key: str, iteration: int, stamp):
    if key == "iter":
        return iteration
    milliseconds = round(stamp.timestamp() * 1000)
    return milliseconds if key == "timestamp" else iso_ms(milliseconds)


@endpoint("events.get_task_latest_scalar_values", verb="task.read")
def get_task_latest_scalar_values(call):
    """The last value of each of a task's series, and its last iteration."""
    task = get_task(call, call.require("task"))
    metrics: dict = {}
    for name, point in sorted((task.last_metrics or {}).items()):
        title, _, series = name.partition("/")
        metrics.setdefault(title, []).append({"name": series, "last_value": point.get("value")})
    return {
        "metrics": [{"name": title, "variants": variants} for title, variants in metrics.items()],
        "last_iter": extra_of(task).last_iteration,
        "name": task.name,
        "status": task.status,
        "last_timestamp": round(task.last_update.timestamp() * 1000),
    }


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@endpoint("projects.get_unique_metric_variants", verb="task.read")
def get_unique_metric_variants(call):
    """The scalar (metric, variant) pairs the caller's tasks of a project (and its
    subprojects, unless include_subprojects is false) or of the given ids reported."""
    tasks = visible_tasks(call)
    project = call.get("project")
    if project:
        if not isinstance(project, str):
            raise bad_request("project must be a project id")
        names = Q(project_id=project)
        if call.flag("include_subprojects", True):
            parent = Project.objects.filter(pk=project).first()
            if parent is not None:
                names |= Q(project__name__startswith=f"{parent.name}/")
        tasks = tasks.filter(names)
    ids = as_list(call.get("ids"))
    if ids:
        if len(ids) > MAX_VARIANT_PAIRS:
            raise bad_request(f"ids must list at most {MAX_VARIANT_PAIRS} tasks")
        tasks = tasks.filter(pk__in=[str(i) for i in ids])
    pairs = (
        ScalarSeries.objects.filter(task__in=tasks)
        .values_list("title", "series")
        .distinct()
        .order_by("title", "series")[:MAX_VARIANT_PAIRS]
    )
    return {
        "metrics": [
            {
                "metric": title,
                "metric_hash": _md5(title),
                "variant": series,
                "variant_hash": _md5(series),
            }
            for title, series in pairs
        ]
    }


# What a task's reported metrics of each of ClearML's event types are read from.
EVENT_TYPES = {
    "training_stats_scalar": ScalarSeries,
    "plot": Plot,
    "training_debug_image": DebugSample,
    "log": LogLine,
}


def _event_types(call) -> list:
    kind = call.get("event_type")
    if kind in (None, "", "all"):
        return list(EVENT_TYPES.values())
    if kind not in EVENT_TYPES:
        raise bad_request(f"event_type must be one of {', '.join(EVENT_TYPES)}")
    return [EVENT_TYPES[kind]]


def _pairs(model, task_ids) -> set:
    """(task, metric, variant) triples; console lines have a metric and no variant (None)."""
    # No ordering: its fields would join the DISTINCT's columns.
    rows = model.objects.filter(task_id__in=task_ids).order_by()
    if model is LogLine:
        named = rows.exclude(metric="").values_list("task_id", "metric").distinct()
        return {(task, metric, None) for task, metric in named[:MAX_VARIANT_PAIRS]}
    return set(rows.values_list("task_id", "title", "series").distinct()[:MAX_VARIANT_PAIRS])


@endpoint("events.get_task_metrics", verb="task.read")
def get_task_metrics(call):
    """The metric names each task reported events of `event_type` under."""
    tasks = requested_tasks(call)
    found: dict = {task.id: set() for task in tasks}
    for model in _event_types(call):
        for task_id, title, _ in _pairs(model, list(found)):
            found[task_id].add(title)
    return {"metrics": [{"task": t, "metrics": sorted(m)} for t, m in found.items()]}


@endpoint("events.get_multi_task_metrics", verb="task.read")
def get_multi_task_metrics(call):
    """The metrics (and their variants) the tasks reported, together."""
    tasks = requested_tasks(call)
    found: dict = {}
    for model in _event_types(call):
        for _, title, series in _pairs(model, [task.id for task in tasks]):
            variants = found.setdefault(title, set())
            if series is not None:
                variants.add(series)
    return {"metrics": [{"metric": m, "variants": sorted(v)} for m, v in sorted(found.items())]}
