"""A run as it is shown: each step's status, task and overrides (masked), its progress and
its figures. Built here once, for the run's page and live feed, the controller's Pipeline
tab and the plots the engine keeps on the controller task."""

from dataclasses import dataclass

from django.utils import timezone

from ..choices import NODE_TERMINAL, NodeStatus
from ..models import PipelineNode, PipelineRun
from ..pipeline_figure import (
    PipelineLayout,
    build_pipeline_figure,
    build_pipeline_table,
    function_call,
    layout_pipeline,
    progress_segments,
)
from ..presenters import read_overrides


@dataclass
class RunView:
    """`steps` is the run's definition; `nodes` each step by name: {status, task_id,
    overrides} (what the figures read) plus, when the nodes were read with their tasks,
    {task, attempts, message}."""

    steps: list
    nodes: dict
    layout: PipelineLayout | None = None

    def figure(self) -> dict:
        return build_pipeline_figure(self.steps, self.nodes, self._layout())

    def table(self) -> dict:
        return build_pipeline_table(self.steps, self.nodes, self._layout())

    def figures(self) -> list:
        """(series, figure) of the plots kept on the controller task."""
        return [("Execution Flow", self.figure()), ("Execution Details", self.table())]

    def order(self) -> list[str]:
        """The steps' names in the DAG's topological order (the figures' and timeline's)."""
        return self._layout().order

    def rows(self) -> list[dict]:
        """One row per step, in the definition's order, for the run page's table."""
        return [
            {"name": name, "parents": list(step.get("parents") or []), **self.nodes[name]}
            for name, step in self._steps()
        ]

    def progress(self) -> dict:
        """How far the run is: `done` of `total` steps ended, and `counts` of each status
        (completed, cached, failed, skipped, ...), so an ended run with a failure never
        reads as all done and green; `segments` are the bar's parts, in STATUS_ORDER."""
        counts: dict[str, int] = {}
        for node in self.nodes.values():
            counts[node["status"]] = counts.get(node["status"], 0) + 1
        done = sum(n for status, n in counts.items() if status in NODE_TERMINAL)
        total = len(self.nodes)
        segments = progress_segments(counts, total)
        return {
            "done": done,
            "total": total,
            "percent": round(100 * done / total) if total else 0,
            "counts": counts,
            "segments": segments,
            "failed": counts.get(NodeStatus.FAILED, 0) + counts.get(NodeStatus.ABORTED, 0),
        }

    def _steps(self):
        for step in self.steps or []:
            yield str(step.get("name")), step

    def _layout(self) -> PipelineLayout:
        if self.layout is None:
            self.layout = layout_pipeline(self.steps or [])
        return self.layout


def node_view(step: dict, status: str, task_id, overrides, items: dict | None = None) -> dict:
    """A step's status, task id and overrides: as resolved when it launched, else as
    defined; masked, since everyone who sees the run reads them. A function step adds its
    function ({name, kwargs, returns}, the kwargs masked), a fan-out its items' counts."""
    if not overrides:
        overrides = dict(step.get("parameter_override") or {})
    view = {"status": status, "task_id": task_id, "overrides": read_overrides(overrides)}
    function = step.get("function")
    if isinstance(function, dict):
        shown = {**function, "kwargs": read_overrides(function.get("kwargs") or {})}
        view["function"] = {**shown, "call": function_call(shown)}
    fan_out = step.get("map")
    if isinstance(fan_out, dict):
        view["map"] = {
            "kwarg": fan_out.get("kwarg"),
            "max_parallel": fan_out.get("max_parallel"),
            "min_success_ratio": fan_out.get("min_success_ratio"),
            **(items or {"total": None, "completed": 0, "failed": 0}),
        }
    return view


def view_of(
    steps: list, nodes: dict, layout: PipelineLayout | None = None, maps: dict | None = None
) -> RunView:
    """The view of `steps` from `nodes` (name -> PipelineNode, or the (status, task id,
    resolved overrides) of each node) that the engine holds, and `maps`, the counts of each
    fan-out's items (_map.summaries); a step the engine has not reached yet shows as
    pending."""
    views = {}
    maps = maps or {}
    for step in steps or []:
        name = str(step.get("name"))
        node = nodes.get(name)
        if node is None:
            views[name] = node_view(step, NodeStatus.PENDING, None, None, maps.get(name))
        elif isinstance(node, tuple):
            views[name] = node_view(step, *node, maps.get(name))
        else:
            views[name] = node_view(
                step, node.status, node.task_id, node.resolved_overrides, maps.get(name)
            )
    return RunView(steps or [], views, layout)


def run_view(run: PipelineRun) -> RunView:
    """The view of `run` as its rows are now, each step with its task, attempts and message."""
    nodes = {node.name: node for node in run.nodes.filter(map_step="").select_related("task")}
    maps = summaries(run) if any(step.get("map") for step in run.steps or []) else None
    view = view_of(run.steps or [], nodes, maps=maps)
    now = timezone.now()
    for name, info in view.nodes.items():
        node = nodes.get(name)
        task = node.task if node else None
        info["task"] = task
        info["attempts"] = node.attempts if node else 0
        info["message"] = node.message if node else ""
        info.update(timing(task, info["status"], now))
    return view


def step_view(run: PipelineRun, name: str) -> dict | None:
    """One step of `run` as its page's panel shows it: run_view's node for that step alone
    (plus `node`, its row, and `step`, its definition), or None for a name not in the run."""
    step = next((s for s in run.steps or [] if str(s.get("name")) == name), None)
    node = run.nodes.filter(name=name, map_step="").select_related("task").first()
    if step is None:
        return None
    maps = summaries(run) if step.get("map") else None
    view = view_of([step], {name: node} if node else {}, maps=maps)
    info = view.nodes[name]
    task = node.task if node else None
    info.update(
        {
            "name": name,
            "parents": list(step.get("parents") or []),
            "step": step,
            "node": node,
            "task": task,
            "attempts": node.attempts if node else 0,
            "message": node.message if node else "",
        }
    )
    info.update(timing(task, info["status"], timezone.now()))
    return info


RESOURCE_FIELDS = (
    "resource_cpu_seconds",
    "resource_peak_rss_bytes",
    "resource_wall_seconds",
    "resource_gpu_seconds",
)


def timing(task, status: str, now) -> dict:
    """When the step's task ran in this run (started, ended, duration in seconds: up to
    now while it runs) and what it used. A cached step reused a task of another run: it
    took no time here, and its resources are that run's, so it shows none."""
    if task is None or status == NodeStatus.CACHED:
        return {"started": None, "ended": None, "duration": None, "resources": None}
    ended = task.completed if status in NODE_TERMINAL and task.started else None
    if ended is not None and ended < task.started:
        ended = task.started
    duration = ((ended or now) - task.started).total_seconds() if task.started else None
    return {
        "started": task.started,
        "ended": ended,
        "duration": duration,
        "resources": {
            "cpu_seconds": task.resource_cpu_seconds,
            "peak_rss_bytes": task.resource_peak_rss_bytes,
            "wall_seconds": task.resource_wall_seconds,
            "gpu_seconds": task.resource_gpu_seconds,
        },
    }


def summaries(run) -> dict:
    """{map step: {total, completed, failed}} of the run's maps, from their batches."""
    found: dict = {}
    rows = (
        PipelineNode.objects.filter(run_id=run.pk)
        .exclude(map_step="")
        .order_by()
        .values_list("map_step", "result")
    )
    for step, result in rows:
        counts = found.setdefault(step, {"total": 0, "completed": 0, "failed": 0})
        for item in result.get("items", []):
            counts["total"] += 1
            if item.get("status") in ("completed", "failed"):
                counts[item["status"]] += 1
    return found
