"""events.*: ClearML's event batches into our ingest_events (console, scalars, plots).

Translation: `log` -> console lines, `training_stats_scalar` -> scalar (or a single value at
ClearML's iteration for them), `plot` -> plot with
`plot_str` decoded (plots upsert by metric/variant/iteration, so the controller's repeated
"Pipeline" reports stay one row each), `training_debug_image` -> debug sample when its image
is on our file server.
"""

import json
import logging
from collections import defaultdict

from django.db import transaction

from webapp.core.errors import DomainError
from webapp.core.events import ingest_events, link_debug_sample
from webapp.core.models import LogLine, Plot

from ..documents import extra_of, file_path_of, get_task, iso, visible_tasks
from ..envelope import ApiError
from ..fileserver import stored_object
from ..registry import endpoint

logger = logging.getLogger("webapp.compat")
# The iteration ClearML's SDK sends report_single_value() under.
SINGLE_VALUE_ITERATION = -(2**31)
ERROR_LEVELS = {"error", "critical", "fatal", "warning", "warn"}


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
        return [{"type": "log", "stream": stream, "text": line} for line in lines], None
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
        figure = event.get("plot_str")
        if isinstance(figure, str):
            figure = json.loads(figure)
        if not isinstance(figure, dict):
            raise ValueError("plot_str is not a Plotly figure")
        return [
            {
                "type": "plot",
                "title": title,
                "series": series,
                "iteration": iteration,
                "figure": figure,
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
    found = stored_object(path, task) if path else None
    if found is None:
        return  # an image on another host: ClearML keeps only its URL, so do we not store it
    link_debug_sample(
        task,
        title=image["title"],
        series=image["series"],
        iteration=image["iteration"],
        storage_key=found[0],
    )


@endpoint("events.get_task_log", verb="task.read")
def get_task_log(call):
    task = get_task(call, call.require("task"))
    size = max(1, min(int(call.get("batch_size", 500)), 10_000))
    lines = list(LogLine.objects.filter(task=task).order_by("-seq")[:size])
    lines.reverse()
    return {
        "events": [
            {
                "task": task.id,
                "type": "log",
                "timestamp": int(line.timestamp.timestamp() * 1000),
                "level": "error" if line.stream == "stderr" else "info",
                "worker": "",
                "msg": line.text,
            }
            for line in lines
        ],
        "returned": len(lines),
        "total": LogLine.objects.filter(task=task).count(),
    }


@endpoint("events.get_task_plots", "events.get_multi_task_plots", verb="task.read")
def get_task_plots(call):
    ids = call.get("tasks") or [call.require("task")]
    tasks = visible_tasks(call).filter(pk__in=[str(t) for t in ids])
    plots = Plot.objects.filter(task__in=tasks).order_by("task", "title", "series", "iteration")
    return {
        "plots": [
            {
                "task": plot.task_id,
                "type": "plot",
                "metric": plot.title,
                "variant": plot.series,
                "iter": plot.iteration,
                "plot_str": json.dumps(plot.figure),
                "timestamp": iso(plot.timestamp),
            }
            for plot in plots
        ],
        "returned": plots.count(),
        "total": plots.count(),
        "scroll_id": None,
    }
