"""events.*: ClearML's event batches into our ingest_events (console, scalars, plots), and
the console read back.

Translation: `log` -> console lines (with the event's time, iteration and metric),
`training_stats_scalar` -> scalar (or a single value at ClearML's iteration for them),
`plot` -> plot with `plot_str` decoded, or kept word for word when it is no figure (plots
upsert by metric/variant/iteration, so the controller's repeated "Pipeline" reports stay
one row each), `training_debug_image` -> debug sample: stored when its image is on our file
server, else kept as its URL or location. The other reads are in event_reads.py and
event_samples.py.
"""

import json
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from webapp.core import execution, scalar_rollup
from webapp.core.errors import Conflict, DomainError
from webapp.core.events import (
    forget_overwritten,
    ingest_events,
    link_debug_sample,
    link_media_location,
    link_media_url,
    newer_at_same_place,
)
from webapp.core.models import LogLine, Plot

from ..documents import extra_of, file_path_of, get_task, iso, visible_tasks
from ..envelope import ApiError, bad_request
from ..fileserver import stored_object
from ..registry import endpoint

logger = logging.getLogger("webapp.compat")
# The iteration ClearML's SDK sends report_single_value() under.
SINGLE_VALUE_ITERATION = -(2**31)
ERROR_LEVELS = {"error", "critical", "fatal", "warning", "warn"}
EPOCH = datetime.fromtimestamp(0, tz=UTC)


def translate(event: dict) -> tuple[list[dict], dict | None]:
    """(our events, a debug image) for one ClearML event; ValueError if unusable."""
    kind = event.get("type")
    if kind == "log":
        level = str(event.get("level") or "info").lower()
        stream = "stderr" if level in ERROR_LEVELS else "stdout"
        text = str(event.get("msg") or "")
        lines = text.split("\n")
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()
        said = {
            "timestamp": _datetime_of(reported_ms(event.get("timestamp"))),
            "iteration": _iteration_of(event.get("iter")),
            "metric": str(event.get("metric") or ""),
        }
        # Only what the event says: a missing iteration is no iteration, not a bad one.
        said = {name: value for name, value in said.items() if value is not None}
        return [{"type": "log", "stream": stream, "text": line, **said} for line in lines], None
    title = str(event.get("metric") or "")
    series = str(event.get("variant") or "")
    iteration = int(event.get("iter") or 0)
    if kind == "training_stats_scalar":
        value = event.get("value")
        if iteration == SINGLE_VALUE_ITERATION:
            # ClearML's report_single_value: a value of the run, not a point of a series.
            return [{"type": "single_value", "name": series, "value": value}], None
        return [
            {
                "type": "scalar",
                "title": title,
                "series": series,
                "iteration": iteration,
                "value": value,
            }
        ], None
    if kind == "plot":
        return [
            {
                "type": "plot",
                "title": title,
                "series": series,
                "iteration": iteration,
                "figure": figure_of(event.get("plot_str")),
                "timestamp_ms": reported_ms(event.get("timestamp")),
            }
        ], None
    if kind == "training_debug_image":
        return [], {
            "title": title,
            "series": series,
            "iteration": iteration,
            "url": event.get("url") or "",
        }
    raise ValueError(f"unsupported event type {kind!r}")


# Where a plot_str that is no Plotly figure is kept, word for word, inside the figure
# stored for it (clearml-server keeps any text; its readers hand the same text back).
PLOT_TEXT = "clearml_plot_str"


def figure_of(plot_str) -> dict:
    """The Plotly figure a plot event's plot_str holds. Text that is not one (clearml-server
    does not check it) is kept as an empty figure titled with its start, and the text."""
    if isinstance(plot_str, dict):
        return plot_str
    text = "" if plot_str is None else str(plot_str)
    try:
        figure = json.loads(text)
    except (ValueError, RecursionError):
        figure = None
    if isinstance(figure, dict) and PLOT_TEXT not in figure:
        return figure
    return {"data": [], "layout": {"title": {"text": text[:200]}}, PLOT_TEXT: text}


def plot_event(plot: Plot, timestamp) -> dict:
    """A stored plot as ClearML's plot event, with its time as the read answers it."""
    return {
        "task": plot.task_id,
        "type": "plot",
        "metric": plot.title,
        "variant": plot.series,
        "iter": plot.iteration,
        "plot_str": plot_str_of(plot.figure),
        "timestamp": timestamp,
        "worker": "",
    }


def plot_str_of(figure) -> str:
    """What a ClearML reader gets back as the plot_str of a stored figure."""
    if isinstance(figure, dict) and isinstance(figure.get(PLOT_TEXT), str):
        return figure[PLOT_TEXT]
    return json.dumps(figure)


def _datetime_of(milliseconds: int | None):
    if milliseconds is None:
        return None
    return EPOCH + timedelta(milliseconds=milliseconds)


def _iteration_of(value) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
        return None
    return value


# Epoch milliseconds from 1970 to 9999: a time a report may say it was made at.
LAST_MILLISECOND = 253_402_300_799_999


def reported_ms(value) -> int | None:
    """An event's own timestamp (ms) when it is one, else None (the time it is stored)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= LAST_MILLISECOND else None


@endpoint("events.add_batch", "events.add", verb="task.report")
def add_batch(call):
    events = call.lines or ([call.body] if call.body.get("type") else [])
    by_task: dict[str, list] = defaultdict(list)
    images: dict[str, list] = defaultdict(list)
    # Clients compare `added` with the number of events they sent (a multi-line log event
    # becomes several console lines here, but counts once).
    received: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    for event in events:
        if not isinstance(event, dict) or not event.get("task"):
            errors["missing task"] += 1
            continue
        try:
            ours, image = translate(event)
        except (ValueError, TypeError) as error:
            errors[str(error)[:200]] += 1
            continue
        by_task[str(event["task"])].extend(ours)
        received[str(event["task"])] += 1
        if image:
            images[str(event["task"])].append(image)
    added = 0
    for task_id in received:
        try:
            # A task the caller may not report on counts as errors, as ClearML's server does.
            task = get_task(call, task_id)
        except ApiError as error:
            errors[error.message[:200]] += received[task_id]
            continue
        try:
            with transaction.atomic():
                if by_task[task_id]:
                    ingest_events(task, by_task[task_id])
                    _track_iteration(task, by_task[task_id])
                for image in images[task_id]:
                    _store_image(task, image)
        except DomainError as error:
            errors[error.message[:200]] += received[task_id]
            continue
        added += received[task_id]
    if errors:
        logger.info("events.add_batch: %s", dict(errors))
    if events and not added:
        # clearml-server's "events not added" (400, subcode 131), with what was wrong.
        raise ApiError(400, "events not added", 131, data=dict(errors))
    return {"added": added, "errors": sum(errors.values()), "errors_info": dict(errors)}


def _track_iteration(task, events: list) -> None:
    iterations = [e["iteration"] for e in events if e["type"] == "scalar" and e["iteration"] >= 0]
    if iterations:
        extra = extra_of(task)
        if max(iterations) > extra.last_iteration:
            extra.last_iteration = max(iterations)
            extra.save()


def _store_image(task, image: dict) -> None:
    path = file_path_of(image["url"])
    if path is None:
        _link_image(task, image)
        return
    found = stored_object(path, task)
    if found is None:
        return  # not on our file server (yet): a later event naming it links it
    link_debug_sample(
        task,
        title=image["title"],
        series=image["series"],
        iteration=image["iteration"],
        storage_key=found[0],
    )


def _link_image(task, image: dict) -> None:
    """Media reported by URL (`report_media(url=...)`) is kept as that URL, as ClearML; a
    location we cannot fetch (s3://, a file path) as its text, and an image event without
    one as reported (clearml-server lists its metric; its readers of images skip it)."""
    place = str(image["url"] or "").strip()
    where = {"title": image["title"], "series": image["series"], "iteration": image["iteration"]}
    if place and newer_at_same_place(task, **where, place=place):
        return
    try:
        if place.lower().startswith(("http://", "https://")):
            sample = link_media_url(task, **where, url=place)
        else:
            sample = link_media_location(task, **where, location=place)
    except DomainError as error:
        logger.info("events.add_batch: media %r not kept: %s", place[:200], error)
        return
    forget_overwritten(sample)


@endpoint("events.get_task_log", verb="task.read")
def get_task_log(call):
    """A page of console lines by time: the latest (or those before `from_timestamp`),
    newest first; with navigate_earlier false, those after it, oldest first. `order`
    turns a page round; `metrics` keeps the lines logged under those metrics."""
    task = get_task(call, call.require("task"))
    size = call.get("batch_size", 5000)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise bad_request("batch_size must be a positive integer")
    size = min(size, 10_000)
    earlier = call.flag("navigate_earlier", True)
    order = call.get("order")
    if order not in (None, "asc", "desc"):
        raise bad_request("order must be asc or desc")
    lines = LogLine.objects.filter(task=task)
    metrics = call.get("metrics") or []
    if not isinstance(metrics, list) or not all(isinstance(m, dict) for m in metrics):
        raise bad_request("metrics must be a list of {metric}")
    if metrics:
        lines = lines.filter(metric__in=[str(m.get("metric") or "") for m in metrics[:1000]])
    total = lines.count()
    since = call.get("from_timestamp")
    if since is not None:
        stamp = _datetime_of(reported_ms(since))
        if stamp is None:
            raise bad_request("from_timestamp must be milliseconds since 1970")
        lines = lines.filter(timestamp__lt=stamp) if earlier else lines.filter(timestamp__gt=stamp)
    newest_first = ("-timestamp", "-seq") if earlier else ("timestamp", "seq")
    page = list(lines.order_by(*newest_first)[:size])
    if (earlier and order == "asc") or (not earlier and order == "desc"):
        page.reverse()
    return {
        "events": [
            {
                "task": task.id,
                "type": "log",
                "timestamp": (line.timestamp - EPOCH) // timedelta(milliseconds=1),
                "iter": line.iteration if line.iteration is not None else 0,
                "metric": line.metric,
                "level": "error" if line.stream == "stderr" else "info",
                "worker": "",
                "msg": line.text,
            }
            for line in page
        ],
        "returned": len(page),
        "total": total,
    }


@endpoint("events.clear_task_log", verb="task.edit")
def clear_task_log(call):
    """Delete a task's console lines: all, those older than threshold_sec, or those of
    include_metrics / not of exclude_metrics. A published task's only with allow_locked."""
    task = get_task(call, call.require("task"))
    threshold = call.get("threshold_sec")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0
    ):
        raise bad_request("threshold_sec must be a non-negative integer")
    names = {}
    for field in ("include_metrics", "exclude_metrics"):
        value = call.get(field) or []
        if not isinstance(value, list) or len(value) > 1000:
            raise bad_request(f"{field} must be a list of at most 1000 metric names")
        names[field] = [str(name) for name in value]
    try:
        deleted = execution.clear_console(
            task,
            older_than=None
            if threshold is None
            else timezone.now() - timedelta(seconds=min(threshold, 10**9)),
            only_metrics=names["include_metrics"],
            except_metrics=names["exclude_metrics"],
            published=call.flag("allow_locked"),
        )
    except Conflict as error:
        raise ApiError(400, f"Cannot update events for a published task: {task.id}", 101) from error
    return {"deleted": deleted}


@endpoint("events.get_task_plots", verb="task.read")
def get_task_plots(call):
    task = get_task(call, call.require("task"))
    # Bounded as clearml-server's own read of them (its newest 10,000).
    plots = Plot.objects.filter(task=task).order_by("-iteration", "title", "series")[:10_000]
    plots = sorted(plots, key=lambda plot: (plot.title, plot.series, plot.iteration))
    return {
        "plots": [plot_event(plot, iso(plot.timestamp)) for plot in plots],
        "returned": len(plots),
        "total": len(plots),
        "scroll_id": None,
    }


# ----------------------------------------------------------------- reading results back


@endpoint("events.get_task_single_value_metrics", verb="task.read")
def get_task_single_value_metrics(call):
    """`Task.get_reported_single_values()`: each task's report_single_value() results."""
    ids = [str(t) for t in (call.get("tasks") or [])]
    answer = []
    for task in visible_tasks(call).filter(pk__in=ids):
        values = [
            {
                "metric": value["title"],
                "variant": value["name"],
                "value": value["value"],
                "iter": 0,
                "timestamp": int(task.last_update.timestamp() * 1000),
            }
            for value in scalar_rollup.single_values(task)
        ]
        answer.append({"task": task.id, "task_name": task.name, "values": values})
    return {"tasks": answer}
