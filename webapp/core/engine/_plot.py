"""A pipeline run's DAG figure and details table, kept on its controller task.

Rebuilding them costs time in proportion to the size of the run, so the engine never does it
while reacting to a step: it only records that a refresh is due (`request`), and the
`core.refresh_pipeline_plot` job (core/tasks.py) rebuilds both plots, at most once per interval. The
interval stretches with what the last rebuild of that run cost (REFRESH_BUDGET), so however
large the run, re-plotting takes a bounded share of the server worker. The engine writes a
run's final plot itself, under the run's lock, so the last picture is never stale.
"""

import logging
import time
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ..choices import PipelineDriver, PipelineStatus
from ..models import PipelineRun, Plot, Task
from . import _jobs
from ._shape import shape_of
from ._view import RESOURCE_FIELDS, summaries, timing, view_of

logger = logging.getLogger(__name__)

PLOT_TITLE = "Pipeline"
MIN_INTERVAL = timedelta(seconds=1)
# A refresh waits at least this many times what the previous one took.
REFRESH_BUDGET = 10
# A refresh due for this long was lost (a broker that was down): the next event asks again.
LOST_AFTER = timedelta(seconds=60)

_last_cost: dict[str, float] = {}


def request(run: PipelineRun, now, changed: bool) -> None:
    """Mark the plot of `run` (locked) due if the engine changed something. Sets
    `run.plot_due` (the caller writes the row) and schedules the job after commit; while a
    refresh is already due this costs nothing, so it is called on every event."""
    due = _due(run.pk, run.plot_due, run.plot_updated, now, changed)
    if due is not None:
        run.plot_due = due
        transaction.on_commit(lambda: _schedule(run.pk, due))


def request_unlocked(run_id: str, plot_due, plot_updated, now) -> None:
    """request() for a change made without the run's lock, given the run's plot fields as
    read: the mark is a conditional UPDATE, so of two callers racing only one schedules."""
    due = _due(run_id, plot_due, plot_updated, now, True)
    if due is not None and PipelineRun.objects.filter(pk=run_id, plot_due=plot_due).update(
        plot_due=due
    ):
        transaction.on_commit(lambda: _schedule(run_id, due))


def _due(run_id: str, plot_due, plot_updated, now, changed: bool):
    if plot_due is not None:
        if now - plot_due < LOST_AFTER:
            return None
    elif not changed and plot_updated is not None:
        return None
    interval = max(MIN_INTERVAL, timedelta(seconds=REFRESH_BUDGET * _last_cost.get(run_id, 0.0)))
    return now if plot_updated is None else max(now, plot_updated + interval)


def _schedule(run_id: str, due) -> None:
    # LOST_AFTER later, should this fail, the next event asks again.
    _jobs.refresh_plot_at(run_id, due)


def refresh(run_id: str) -> bool:
    """Rebuild the plots of a running run whose refresh is due; False if none was.

    Idempotent: the first thing it does is take the due mark, so a second delivery finds
    nothing to do. The figure is built outside any write transaction.
    """
    now = timezone.now()
    taken = (
        PipelineRun.objects.filter(pk=run_id, status=PipelineStatus.RUNNING, plot_due__isnull=False)
        .exclude(driver=PipelineDriver.CLEARML)
        .update(plot_due=None, plot_updated=now)
    )
    if not taken:
        return False
    started = time.perf_counter()
    run = PipelineRun.objects.defer("steps", "parameters").get(pk=run_id)
    shape = shape_of(run)
    rows = run.nodes.filter(map_step="").values_list(
        "name", "status", "task_id", "resolved_overrides"
    )
    maps = summaries(run) if any(step.get("map") for step in shape.steps) else None
    figures = _figures(shape, {name: tuple(node) for name, *node in rows}, maps)
    with transaction.atomic():
        # The engine writes the final plot under this lock when the run ends; a refresh
        # built before that must not replace it.
        still_running = (
            PipelineRun.objects.select_for_update()
            .filter(pk=run_id, status=PipelineStatus.RUNNING)
            .exists()
        )
        if still_running:
            _write(run.controller_id, figures, now)
    _last_cost[run_id] = time.perf_counter() - started
    return still_running


def write_final(run: PipelineRun, shape, nodes: dict, now) -> None:
    """The plot of a run that just ended, from the nodes the engine holds (run locked)."""
    maps = summaries(run) if any(step.get("map") for step in shape.steps) else None
    _write(run.controller_id, _figures(shape, nodes, maps), now)
    run.plot_updated = now
    run.plot_due = None
    _last_cost.pop(run.pk, None)


def _figures(shape, nodes: dict, maps: dict | None = None) -> list:
    view = view_of(shape.steps, nodes, shape.layout, maps)
    # Durations and resources of the steps' tasks, in one query, for the boxes and table.
    ids = {info["task_id"] for info in view.nodes.values() if info["task_id"]}
    tasks = Task.objects.filter(pk__in=ids).only("id", "started", "completed", *RESOURCE_FIELDS)
    found = {task.pk: task for task in tasks} if ids else {}
    now = timezone.now()
    for info in view.nodes.values():
        info.update(timing(found.get(info["task_id"]), info["status"], now))
    figures = view.figures()
    shape.layout = view.layout  # laid out once per process
    return figures


def _write(controller_id: str, figures: list, now) -> None:
    for series, figure in figures:
        Plot.objects.update_or_create(
            task_id=controller_id,
            title=PLOT_TITLE,
            series=series,
            iteration=0,
            defaults={"figure": figure, "timestamp": now},
        )
