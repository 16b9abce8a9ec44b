"""events.* reads of plots and debug images the way ClearML's web UI pages through them:
the latest iterations of each task (`plots`, `debug_images`), one metric's sample at an
iteration and the one before or after it (`get_*_sample`, `next_*_sample`), the last
plots of several tasks side by side (`get_multi_task_plots`), and every event of a task
(`get_task_events`).

Each page is a few bounded queries on the task's rows; where the reader is (the
iterations a page ended at, the sample it shows) travels in the scroll id (scroll.py).
"""

import math
from datetime import UTC, datetime, timedelta

from django.db.models import F, Max, Min, Q, Sum, Window
from django.db.models.functions import RowNumber

from webapp.core.models import DebugSample, LogLine, Plot, Scalar, ScalarSeries

from .. import scroll
from ..documents import get_task
from ..envelope import bad_request
from ..registry import endpoint
from .event_reads import MAX_TASKS, metric_filter, requested_tasks, wanted_metrics
from .events import plot_event as plot_event_at

MAX_ITERS = 100
# Events of one page: clearml-server's own cap on the buckets of one search.
MAX_EVENTS = 10_000
# The variants of one metric at one iteration that a sample shows (clearml-server's too).
MAX_SAMPLE_EVENTS = 100
EPOCH = datetime.fromtimestamp(0, tz=UTC)


def bounded_int(call, name: str, default: int, low: int, high: int) -> int:
    value = call.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value:
        raise bad_request(f"{name} must be an integer of at least {low}")
    return min(value, high)


def milliseconds(stamp: datetime) -> int:
    return (stamp - EPOCH) // timedelta(milliseconds=1)


def plot_event(plot: Plot) -> dict:
    return plot_event_at(plot, milliseconds(plot.timestamp))


def image_event(sample: DebugSample, base: str) -> dict:
    # Stored bytes are served by our API (the file server's object path is not kept); a
    # location we cannot fetch goes back as the client reported it.
    url = sample.url or sample.location or f"{base}/api/v1/samples/{sample.pk}/"
    return {
        "task": sample.task_id,
        "type": "training_debug_image",
        "metric": sample.title,
        "variant": sample.series,
        "iter": sample.iteration,
        "url": url,
        "timestamp": milliseconds(sample.timestamp),
        "worker": "",
    }


# ------------------------------------------------------- the latest iterations, paged


def _requested(call) -> dict:
    """{task id: {metric: [variants]} or None for all} from `metrics: [{task, metric,
    variants}]`; a task named without a metric wants all of its metrics."""
    entries = call.require("metrics")
    if not isinstance(entries, list) or len(entries) > MAX_TASKS * 10:
        raise bad_request("metrics must be a list of {task, metric, variants}")
    requested: dict = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("task"), str):
            raise bad_request("each of metrics must name a task")
        task_id = entry["task"]
        if not entry.get("metric"):
            requested[task_id] = None
        elif requested.get(task_id, {}) is not None:
            one = wanted_metrics([{"metric": entry["metric"], "variants": entry.get("variants")}])
            for metric, variants in one.items():
                requested.setdefault(task_id, {}).setdefault(metric, []).extend(variants)
    if len(requested) > MAX_TASKS:
        raise bad_request(f"metrics may name at most {MAX_TASKS} tasks")
    return requested


def _places(call) -> dict:
    """{task id: [lowest, highest] iteration shown so far} from the scroll id."""
    scroll_id = call.get("scroll_id")
    if not scroll_id:
        return {}
    places = scroll.decode("metric_events", scroll_id).get("tasks")
    if not isinstance(places, dict):
        raise scroll.invalid(scroll_id)
    for place in places.values():
        if not (isinstance(place, list) and len(place) == 2):
            raise scroll.invalid(scroll_id)
        for value in place:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise scroll.invalid(scroll_id)
    return places


def _latest_iterations(call, rows_of, to_event) -> dict:
    """clearml-server's metric events iterator: per task, the next `iters` iterations
    (earlier ones by default; the first page always the latest), newest first, with each
    variant's event of each of them. `refresh` starts again from the latest."""
    requested = _requested(call)
    iters = bounded_int(call, "iters", 1, 1, MAX_ITERS)
    navigate_earlier, refresh = call.flag("navigate_earlier", True), call.flag("refresh")
    places = _places(call)
    answer = []
    for task_id, wanted in requested.items():
        task = get_task(call, task_id)
        low, high = [None, None] if refresh else places.get(task.id, [None, None])
        earlier = navigate_earlier or high is None
        rows = rows_of(task).filter(metric_filter(wanted))
        if earlier and low is not None:
            rows = rows.filter(iteration__lt=low)
        elif not earlier and high is not None:
            rows = rows.filter(iteration__gt=high)
        chosen = list(
            rows.order_by("-iteration" if earlier else "iteration")
            .values_list("iteration", flat=True)
            .distinct()[:iters]
        )
        by_iteration: dict[int, list] = {iteration: [] for iteration in sorted(chosen)[::-1]}
        events = rows.filter(iteration__in=chosen).order_by("-iteration", "title", "series")
        for row in events[:MAX_EVENTS]:
            by_iteration[row.iteration].append(to_event(row))
        places[task.id] = [min(chosen), max(chosen)] if chosen else [low, high]
        answer.append(
            {
                "task": task.id,
                "iterations": [{"iter": i, "events": e} for i, e in by_iteration.items()],
            }
        )
    return {"metrics": answer, "scroll_id": scroll.encode("metric_events", {"tasks": places})}


def _plots_of(task):
    return Plot.objects.filter(task=task)


def _images_of(task):
    # Those with something to show (an image event without a URL is only listed as a metric).
    return DebugSample.objects.filter(task=task).exclude(storage_key="", url="", location="")


@endpoint("events.plots", verb="task.read")
def plots(call):
    return _latest_iterations(call, _plots_of, plot_event)


@endpoint("events.debug_images", verb="task.read")
def debug_images(call):
    """Also `Task.get_debug_samples()`: per task, the samples of its last `iters`
    iterations, newest first; the scroll id pages to earlier ones."""
    base = call.request.build_absolute_uri("/").rstrip("/")
    return _latest_iterations(call, _images_of, lambda sample: image_event(sample, base))


# ---------------------------------------------------------- one sample and the next


def _iteration(call):
    value = call.get("iteration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
        raise bad_request("iteration must be an integer")
    return value


def _metric(call, name: str = "metric") -> str:
    value = call.body.get(name)
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    return value


def _sample_state(call, task, kind: str, scroll_id) -> dict:
    state = scroll.decode(kind, scroll_id)
    if state.get("task") != task.id or not isinstance(state.get("all"), bool):
        raise scroll.invalid(scroll_id)
    scroll.text(state, "metric", scroll_id)
    scroll.optional_int(state, "iteration", scroll_id)
    return state


def _span(rows) -> tuple:
    span = rows.aggregate(low=Min("iteration"), high=Max("iteration"))
    return span["low"], span["high"]


def _order(earlier: bool, *fields: str) -> list:
    return [f"-{field}" if earlier else field for field in fields]


def _after(field: str, earlier: bool, value) -> Q:
    return Q(**{f"{field}__{'lt' if earlier else 'gt'}": value})


def _plot_answer(task, state: dict, found: tuple | None) -> dict:
    """The events of (iteration, metric) `found`, and where the reader is now."""
    answer = {"events": [], "min_iteration": None, "max_iteration": None}
    if found is not None:
        state = {**state, "iteration": found[0], "metric": found[1]}
        rows = Plot.objects.filter(task=task, title=found[1])
        answer["min_iteration"], answer["max_iteration"] = _span(rows)
        events = rows.filter(iteration=found[0]).order_by("series")[:MAX_SAMPLE_EVENTS]
        answer["events"] = [plot_event(plot) for plot in events]
    return {"scroll_id": scroll.encode("plot_sample", state), **answer}


@endpoint("events.get_plot_sample", verb="task.read")
def get_plot_sample(call):
    """One metric's plots at an iteration (or the last one before it; the latest by
    default): every variant's, with the metric's first and last iteration."""
    task = get_task(call, call.require("task"))
    metric, iteration = _metric(call), _iteration(call)
    navigate_all = not call.flag("navigate_current_metric", True)
    if call.get("scroll_id"):
        state = _sample_state(call, task, "plot_sample", call.get("scroll_id"))
        if state["all"] != navigate_all or (not navigate_all and state["metric"] != metric):
            raise scroll.invalid(call.get("scroll_id"))
    state = {"task": task.id, "metric": metric, "iteration": None, "all": navigate_all}
    rows = Plot.objects.filter(task=task, title=metric)
    if iteration is not None:
        rows = rows.filter(iteration__lte=iteration)
    found = rows.order_by("-iteration").values_list("iteration", "title").first()
    answer = _plot_answer(task, state, found)
    if found is None:
        answer["min_iteration"], answer["max_iteration"] = _span(
            Plot.objects.filter(task=task, title=metric)
        )
    return answer


@endpoint("events.next_plot_sample", verb="task.read")
def next_plot_sample(call):
    """The plots after (or, by default, before) the ones the scroll id shows: the next
    metric of the same iteration, else the nearest iteration's first or last metric
    (only the same metric's when the scroll was started on one)."""
    task = get_task(call, call.require("task"))
    scroll_id = call.require("scroll_id")
    state = _sample_state(call, task, "plot_sample", scroll_id)
    if state.get("iteration") is None:
        return {"scroll_id": scroll_id, "events": [], "min_iteration": None, "max_iteration": None}
    earlier = call.flag("navigate_earlier", True)
    iteration, metric = state["iteration"], state["metric"]
    rows = Plot.objects.filter(task=task)
    if not state["all"]:
        rows = rows.filter(Q(title=metric) & _after("iteration", earlier, iteration))
    elif call.flag("next_iteration"):
        rows = rows.filter(_after("iteration", earlier, iteration))
    else:
        rows = rows.filter(
            Q(iteration=iteration) & _after("title", earlier, metric)
            | _after("iteration", earlier, iteration)
        )
    found = rows.order_by(*_order(earlier, "iteration", "title"))
    found = found.values_list("iteration", "title").first()
    if found is None:
        return {"scroll_id": scroll_id, "events": [], "min_iteration": None, "max_iteration": None}
    return _plot_answer(task, state, found)


def _image_answer(call, task, state: dict, sample: DebugSample | None) -> dict:
    answer = {"event": None, "min_iteration": None, "max_iteration": None}
    if sample is not None:
        state = {
            **state,
            "iteration": sample.iteration,
            "metric": sample.title,
            "variant": sample.series,
        }
        base = call.request.build_absolute_uri("/").rstrip("/")
        answer["event"] = image_event(sample, base)
        answer["min_iteration"], answer["max_iteration"] = _span(
            _images_of(task).filter(title=sample.title, series=sample.series)
        )
    return {"scroll_id": scroll.encode("image_sample", state), **answer}


@endpoint("events.get_debug_image_sample", verb="task.read")
def get_debug_image_sample(call):
    """One variant's image at an iteration (or the last one before it; the latest by
    default), with the variant's first and last iteration."""
    task = get_task(call, call.require("task"))
    metric, variant, iteration = _metric(call), _metric(call, "variant"), _iteration(call)
    navigate_all = not call.flag("navigate_current_metric", True)
    if call.get("scroll_id"):
        state = _sample_state(call, task, "image_sample", call.get("scroll_id"))
        if state["all"] != navigate_all or (not navigate_all and state["metric"] != metric):
            raise scroll.invalid(call.get("scroll_id"))
    state = {"task": task.id, "metric": metric, "variant": variant, "iteration": None}
    state["all"] = navigate_all
    rows = _images_of(task).filter(title=metric, series=variant)
    if iteration is not None:
        rows = rows.filter(iteration__lte=iteration)
    sample = rows.order_by("-iteration").first()
    answer = _image_answer(call, task, state, sample)
    if sample is None:
        answer["min_iteration"], answer["max_iteration"] = _span(
            _images_of(task).filter(title=metric, series=variant)
        )
    return answer


@endpoint("events.next_debug_image_sample", verb="task.read")
def next_debug_image_sample(call):
    """The image after (or, by default, before) the one the scroll id shows: the next
    variant of the same iteration, else the nearest iteration's first or last variant."""
    task = get_task(call, call.require("task"))
    scroll_id = call.require("scroll_id")
    state = _sample_state(call, task, "image_sample", scroll_id)
    variant = scroll.text(state, "variant", scroll_id)
    if state.get("iteration") is None:
        return {"scroll_id": scroll_id, "event": None, "min_iteration": None, "max_iteration": None}
    earlier = call.flag("navigate_earlier", True)
    iteration, metric = state["iteration"], state["metric"]
    rows = _images_of(task)
    if not state["all"]:
        rows = rows.filter(title=metric)
    later_variant = _after("title", earlier, metric) | Q(title=metric) & _after(
        "series", earlier, variant
    )
    same = rows.filter(Q(iteration=iteration) & later_variant)
    same = same.order_by(*_order(earlier, "title", "series")).first()
    other = rows.filter(_after("iteration", earlier, iteration))
    other = other.order_by(*_order(earlier, "iteration", "title", "series"))
    sample = other.first() if call.flag("next_iteration") else (same or other.first())
    if sample is None:
        return {"scroll_id": scroll_id, "event": None, "min_iteration": None, "max_iteration": None}
    return _image_answer(call, task, state, sample)


# ------------------------------------------------------------- several tasks' plots


@endpoint("events.get_multi_task_plots", verb="task.read")
def get_multi_task_plots(call):
    """The last `iters` plots of each (metric, variant) of each task, as clearml-server's
    {metric: {variant: {task id: {iteration: {name, plots}}}}}."""
    iters = bounded_int(call, "iters", 1, 1, MAX_ITERS)
    wanted = wanted_metrics(call.get("metrics"))
    tasks = requested_tasks(call)
    names = {task.id: task.name for task in tasks}
    newest = Window(
        RowNumber(), partition_by=[F("task_id"), F("title"), F("series")], order_by="-iteration"
    )
    rows = (
        Plot.objects.filter(Q(task__in=list(names)) & metric_filter(wanted))
        .annotate(newest=newest)
        .filter(newest__lte=iters)
        .order_by("title", "series", "task_id", "-iteration")[:MAX_EVENTS]
    )
    answer: dict = {}
    returned = 0
    for plot in rows:
        by_task = answer.setdefault(plot.title, {}).setdefault(plot.series, {})
        entry = by_task.setdefault(plot.task_id, {}).setdefault(
            str(plot.iteration), {"name": names[plot.task_id], "plots": []}
        )
        entry["plots"].append(plot_event(plot))
        returned += 1
    return {"plots": answer, "returned": returned, "total": returned, "scroll_id": None}


# ------------------------------------------------------------- every event of a task

# Each kind of event, the model it is kept in and the key its pages go by (unique per task).
EVENT_KINDS = (
    ("training_stats_scalar", Scalar, ("iteration", "title", "series")),
    ("plot", Plot, ("iteration", "title", "series")),
    ("training_debug_image", DebugSample, ("iteration", "title", "series")),
    ("log", LogLine, ("seq",)),
)


def _past(fields: tuple, values: list, descending: bool) -> Q:
    """Rows past `values` in the order of `fields` (a keyset page's start)."""
    op = "lt" if descending else "gt"
    condition = Q(pk__in=[])
    for depth, field in enumerate(fields):
        step = Q(**{f"{field}__{op}": values[depth]})
        for before, value in zip(fields[:depth], values[:depth], strict=True):
            step &= Q(**{before: value})
        condition |= step
    return condition


def _as_event(kind: str, row, base: str) -> dict:
    if kind == "plot":
        return plot_event(row)
    if kind == "training_debug_image":
        return image_event(row, base)
    shared = {"task": row.task_id, "type": kind, "timestamp": milliseconds(row.timestamp)}
    if kind == "log":
        level = "error" if row.stream == "stderr" else "info"
        return {**shared, "iter": row.iteration or 0, "metric": row.metric, "level": level} | {
            "msg": row.text
        }
    value = row.value if row.value is not None and math.isfinite(row.value) else None
    return {**shared, "metric": row.title, "variant": row.series, "iter": row.iteration} | {
        "value": value
    }


def _count(kind: str, model, task) -> int:
    if kind == "training_stats_scalar":
        # Each series counts its points as they arrive: no count over every point.
        points = ScalarSeries.objects.filter(task=task).aggregate(n=Sum("points"))["n"]
        return points or 0
    return model.objects.filter(task=task).count()


@endpoint("events.get_task_events", verb="task.read")
def get_task_events(call):
    """Every event of a task (or of one `event_type`), a page at a time: each kind in turn
    (scalars, plots, debug images, console lines), each by its own key, the scroll id
    holding the kind and the last key sent."""
    task = get_task(call, call.require("task"))
    size = bounded_int(call, "batch_size", 500, 1, 10_000)
    scroll_id = call.get("scroll_id")
    if scroll_id:
        state = scroll.decode("task_events", scroll_id)
        if state.get("task") != task.id or not isinstance(state.get("kinds"), list):
            raise scroll.invalid(scroll_id)
        kinds, at, after = state["kinds"], state.get("at"), state.get("after")
        descending, total = bool(state.get("desc")), state.get("total")
        if not call.get("batch_size"):
            size = max(1, min(scroll.optional_int(state, "size", scroll_id) or size, 10_000))
        if not (isinstance(at, int) and 0 <= at <= len(EVENT_KINDS)):
            raise scroll.invalid(scroll_id)
    else:
        wanted = call.get("event_type")
        kinds = [k for k, _, _ in EVENT_KINDS if wanted in (None, "", "all", k)]
        if not kinds:
            names = ", ".join(k for k, _, _ in EVENT_KINDS)
            raise bad_request(f"event_type must be one of {names}")
        at, after, descending = 0, None, call.get("order") == "desc"
        total = sum(_count(kind, model, task) for kind, model, _ in EVENT_KINDS if kind in kinds)
    chosen = [entry for entry in EVENT_KINDS if entry[0] in kinds]
    base = call.request.build_absolute_uri("/").rstrip("/")
    events: list = []
    while at < len(chosen) and len(events) < size:
        kind, model, fields = chosen[at]
        rows = model.objects.filter(task=task)
        if after is not None:
            if not (
                isinstance(after, list)
                and len(after) == len(fields)
                and all(type(v) is str or (type(v) is int and abs(v) < 2**63) for v in after)
            ):
                raise scroll.invalid(scroll_id)
            rows = rows.filter(_past(fields, after, descending))
        order = [f"-{field}" if descending else field for field in fields]
        page = list(rows.order_by(*order)[: size - len(events)])
        events += [_as_event(kind, row, base) for row in page]
        if len(events) < size:
            at, after = at + 1, None
        else:
            after = [getattr(page[-1], field) for field in fields]
    state = {"task": task.id, "kinds": kinds, "at": at, "after": after}
    state |= {"desc": descending, "total": total, "size": size}
    return {
        "events": events,
        "returned": len(events),
        "total": total,
        "scroll_id": scroll.encode("task_events", state),
    }
