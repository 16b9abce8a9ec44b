"""The run page's view model, built once per request: the pipeline_views are thin, this
module reads the run (through the engine's view of it) and decides what the page, its live
feed, its step panel and the runs list show.

Everything a reader sees of parameters comes masked (presenters.py, through the engine's
view and `read_task`).
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone

from webapp.core import engine
from webapp.core.choices import NODE_TERMINAL, PIPELINE_TERMINAL, NodeStatus
from webapp.core.pipeline_figure import progress_segments
from webapp.core.pipeline_timeline import build_pipeline_timeline
from webapp.core.presenters import read_task

from .plotting import json_safe

CONSOLE_TAIL_LINES = 40
PANEL_METRICS = 40
PANEL_ARTIFACTS = 50
RESOURCE_FIELDS = ("cpu_seconds", "peak_rss_bytes", "wall_seconds", "gpu_seconds")
# The steps table beside a large run's DAG lists this many; every step stays one click away
# in the DAG and the timeline (a table of 1,000 rows is most of the page's weight).
TABLE_ROWS = 200


@dataclass
class RunPage:
    run: object
    figure: dict
    timeline: dict
    rows: list
    more_rows: int
    progress: dict
    totals: dict
    ended: datetime | None
    duration: float | None
    terminal: bool

    states: list

    @property
    def version(self) -> str:
        """Changes when a step changes (the figure, or a step's start or end): the page skips
        redrawing unchanged figures, since a redraw drops the hover box the user may be
        reading. A running step's bar growing with the clock is not a change."""
        # What the figures are drawn from: each step's state, task, times and a fan-out's
        # item counts, and the definition's revision (an open run adds steps). Cheaper to
        # hash than the figures' JSON.
        drawn = json.dumps([self.run.revision, self.states], default=str)
        return hashlib.sha256(drawn.encode()).hexdigest()[:16]


def build_run_page(run) -> RunPage:
    view = engine.run_view(run)
    now = timezone.now()
    rows = view.rows()
    ended, duration = run_times(run, now)
    return RunPage(
        run=run,
        figure=json_safe(view.figure()),
        timeline=json_safe(build_pipeline_timeline(view.order(), view.nodes, run.created, now)),
        rows=rows[:TABLE_ROWS],
        more_rows=max(len(rows) - TABLE_ROWS, 0),
        progress=view.progress(),
        totals=resource_totals(view.nodes.values()),
        ended=ended,
        duration=duration,
        terminal=run.status in PIPELINE_TERMINAL,
        states=[
            # a fan-out's item counts move while its node stays running
            (name, info["status"], info["task_id"], info.get("started"), info.get("ended"))
            + ((info["map"],) if info.get("map") else ())
            for name, info in view.nodes.items()
        ],
    )


def run_times(run, now=None) -> tuple[datetime | None, float | None]:
    """When the run ended (None while it runs) and how long it ran (up to now if running)."""
    now = now or timezone.now()
    ended = run.completed if run.status in PIPELINE_TERMINAL else None
    end = ended or (now if run.status not in PIPELINE_TERMINAL else None)
    if end is None:
        return None, None
    return ended, max((end - run.created).total_seconds(), 0.0)


def resource_totals(nodes) -> dict:
    """What the run's steps used, summed over the steps that ran in it (cached ones reused
    another run's work); peak memory is the largest step's. None where no step measured."""
    totals: dict = dict.fromkeys(RESOURCE_FIELDS)
    measured = 0
    for info in nodes:
        used = info.get("resources") or {}
        if not any(used.get(field) is not None for field in RESOURCE_FIELDS):
            continue
        measured += 1
        for field in RESOURCE_FIELDS:
            value = used.get(field)
            if value is None:
                continue
            if field == "peak_rss_bytes":
                totals[field] = max(totals[field] or 0, value)
            else:
                totals[field] = (totals[field] or 0.0) + value
    totals["measured_steps"] = measured
    return totals


def state_payload(page: RunPage, **fragments: str) -> dict:
    """The live feed's answer: what the page redraws on each poll; `fragments` are its
    parts rendered as HTML (nodes_html, progress_html, times_html)."""
    run = page.run
    return {
        "status": run.status,
        "label": run.get_status_display(),
        "progress": page.progress,
        "figure": page.figure,
        "timeline": page.timeline,
        "version": page.version,
        "terminal": page.terminal,
        **fragments,
    }


# ------------------------------------------------------------------- the step panel
def step_panel(run, name: str) -> dict | None:
    """Everything the panel beside the DAG shows of one step; None if the run has no such step."""
    info = engine.step_view(run, name)
    if info is None:
        return None
    task = info["task"]
    node = info["node"]
    reading = read_task(task) if task is not None else None
    return {
        **info,
        "cache": cache_state(info["status"], node),
        # why it ran or was reused, as the engine decided when it launched (engine/_why.py)
        "cache_reason": (node.decision or {}).get("reason", "") if node is not None else "",
        "hyperparameters": reading.hyperparameters if reading else {},
        "artifacts": list(task.artifacts.order_by("name")[:PANEL_ARTIFACTS]) if task else [],
        "console": _console_tail(task) if task else [],
        "metrics": _metrics(task) if task else [],
        "measured": any((info.get("resources") or {}).get(f) is not None for f in RESOURCE_FIELDS),
    }


def cache_state(status: str, node) -> str:
    if status == NodeStatus.CACHED:
        return "cached: reused the result of an earlier run"
    if status == NodeStatus.SKIPPED:
        return "skipped: not run"
    if status in NODE_TERMINAL or status == NodeStatus.RUNNING:
        return "ran in this run"
    return "not run yet"


def _console_tail(task) -> list:
    lines = list(
        task.log_lines.order_by("-seq").values("seq", "stream", "text")[:CONSOLE_TAIL_LINES]
    )
    return lines[::-1]


def _metrics(task) -> list:
    values = task.last_metrics or {}
    shown = []
    for key in sorted(values)[:PANEL_METRICS]:
        entry = values[key] if isinstance(values[key], dict) else {}
        shown.append(
            {
                "name": key,
                "value": entry.get("raw", entry.get("value")),
                "iteration": entry.get("iteration"),
            }
        )
    return shown


# ------------------------------------------------------------------- the runs list
def with_progress(runs):
    """`runs` annotated with the counts the list shows: steps of each end, apart."""
    steps = Q(nodes__map_step="")
    return runs.annotate(
        n_done=Count("nodes", filter=steps & Q(nodes__status__in=NODE_TERMINAL)),
        n_completed=Count("nodes", filter=steps & Q(nodes__status=NodeStatus.COMPLETED)),
        n_cached=Count("nodes", filter=steps & Q(nodes__status=NodeStatus.CACHED)),
        n_failed=Count(
            "nodes",
            filter=steps & Q(nodes__status__in=(NodeStatus.FAILED, NodeStatus.ABORTED)),
        ),
        n_skipped=Count("nodes", filter=steps & Q(nodes__status=NodeStatus.SKIPPED)),
    )


def run_summary(run, now=None) -> dict:
    """A row of the runs list: progress by kind of end, when it ended, how long it took."""
    total = len(run.steps or [])
    counts = {
        NodeStatus.COMPLETED: run.n_completed,
        NodeStatus.CACHED: run.n_cached,
        NodeStatus.FAILED: run.n_failed,
        NodeStatus.SKIPPED: run.n_skipped,
    }
    segments = progress_segments(counts, total)
    ended, duration = run_times(run, now)
    done = min(run.n_done, total)
    return {
        "done": done,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
        "counts": counts,
        "segments": segments,
        "failed": run.n_failed,
        "ended": ended,
        "duration": duration,
    }
