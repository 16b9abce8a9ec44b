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
from datetime import UTC, datetime

from django.db import transaction

from webapp.core import scalar_rollup
from webapp.core.errors import DomainError
from webapp.core.events import ingest_events, link_debug_sample, link_media_url
from webapp.core.models import DebugSample, LogLine, Plot

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
    if path is None:
        # Media reported by URL only (`report_media(url=...)`): kept as that URL, as ClearML.
        try:
            link_media_url(
                task,
                title=image["title"],
                series=image["series"],
                iteration=image["iteration"],
                url=image["url"],
            )
        except DomainError as error:
            logger.info("events.add_batch: media %r not kept: %s", image["url"][:200], error)
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


# ----------------------------------------------------------------- reading results back


@endpoint("events.scalar_metrics_iter_histogram", verb="task.read")
def scalar_metrics_iter_histogram(call):
    """`Task.get_reported_scalars()`: {title: {series: {name, x, y}}}, x by `key` (iter,
    timestamp or iso_time); a long series as its drawn points (scalar_rollup)."""
    task = get_task(call, call.require("task"))
    key = call.get("key") or "iter"
    result: dict = {}
    for chart in scalar_rollup.charts(task):
        if key == "timestamp":
            xs = chart["t"]
        elif key == "iso_time":
            xs = [iso_ms(stamp) for stamp in chart["t"]]
        else:
            xs = chart["x"]
        result.setdefault(chart["title"], {})[chart["series"]] = {
            "name": chart["series"],
            "x": xs,
            "y": chart["y"],
        }
    return result


def iso_ms(stamp: int) -> str:
    return datetime.fromtimestamp(stamp / 1000, tz=UTC).isoformat()


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


def _sample_event(sample: DebugSample, base: str) -> dict:
    # Stored bytes are served by our API (the file server's object path is not kept).
    url = sample.url or f"{base}/api/v1/samples/{sample.pk}/"
    return {
        "task": sample.task_id,
        "type": "training_debug_image",
        "metric": sample.title,
        "variant": sample.series,
        "iter": sample.iteration,
        "url": url,
        "timestamp": int(sample.timestamp.timestamp() * 1000),
    }


@endpoint("events.debug_images", verb="task.read")
def debug_images(call):
    """`Task.get_debug_samples()`: per requested (task, metric, variants), the samples of the
    last `iters` iterations, newest first. One page: a request with a scroll_id (the SDK
    asks for the next page) answers no iterations."""
    wanted = [m for m in (call.get("metrics") or []) if isinstance(m, dict) and m.get("task")]
    iters = max(1, min(int(call.get("iters") or 1), 1000))
    base = call.request.build_absolute_uri("/").rstrip("/")
    metrics = []
    for entry in wanted:
        task = get_task(call, str(entry["task"]))
        samples = DebugSample.objects.filter(task=task)
        if entry.get("metric"):
            samples = samples.filter(title=str(entry["metric"]))
        variants = [str(v) for v in entry.get("variants") or []]
        if variants:
            samples = samples.filter(series__in=variants)
        by_iteration: dict[int, list] = defaultdict(list)
        if not call.get("scroll_id"):
            for sample in samples.order_by("-iteration", "series"):
                if sample.iteration not in by_iteration and len(by_iteration) >= iters:
                    break
                by_iteration[sample.iteration].append(_sample_event(sample, base))
        metrics.append(
            {
                "task": task.id,
                "metric": entry.get("metric") or "",
                "iterations": [{"iter": i, "events": e} for i, e in by_iteration.items()],
            }
        )
    return {"metrics": metrics, "scroll_id": "done"}
