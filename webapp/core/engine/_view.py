"""A run as it is shown: each step's status, task and overrides (masked), its progress and
its figures. Built here once, for the run's page and live feed, the controller's Pipeline
tab and the plots the engine keeps on the controller task."""

from dataclasses import dataclass

from ..choices import NODE_TERMINAL, NodeStatus
from ..models import PipelineRun
from ..pipeline_figure import (
    PipelineLayout,
    build_pipeline_figure,
    build_pipeline_table,
    layout_pipeline,
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

    def rows(self) -> list[dict]:
        """One row per step, in the definition's order, for the run page's table."""
        return [
            {"name": name, "parents": list(step.get("parents") or []), **self.nodes[name]}
            for name, step in self._steps()
        ]

    def progress(self) -> dict:
        done = sum(1 for node in self.nodes.values() if node["status"] in NODE_TERMINAL)
        total = len(self.nodes)
        return {
            "done": done,
            "total": total,
            "percent": round(100 * done / total) if total else 0,
        }

    def _steps(self):
        for step in self.steps or []:
            yield str(step.get("name")), step

    def _layout(self) -> PipelineLayout:
        if self.layout is None:
            self.layout = layout_pipeline(self.steps or [])
        return self.layout


def node_view(step: dict, status: str, task_id, overrides) -> dict:
    """A step's status, task id and overrides: as resolved when it launched, else as
    defined; masked, since everyone who sees the run reads them."""
    if not overrides:
        overrides = dict(step.get("parameter_override") or {})
    return {"status": status, "task_id": task_id, "overrides": read_overrides(overrides)}


def view_of(steps: list, nodes: dict, layout: PipelineLayout | None = None) -> RunView:
    """The view of `steps` from `nodes` (name -> PipelineNode, or the (status, task id,
    resolved overrides) of each node) that the engine holds; a step the engine has not
    reached yet shows as pending."""
    views = {}
    for step in steps or []:
        name = str(step.get("name"))
        node = nodes.get(name)
        if node is None:
            views[name] = node_view(step, NodeStatus.PENDING, None, None)
        elif isinstance(node, tuple):
            views[name] = node_view(step, *node)
        else:
            views[name] = node_view(step, node.status, node.task_id, node.resolved_overrides)
    return RunView(steps or [], views, layout)


def run_view(run: PipelineRun) -> RunView:
    """The view of `run` as its rows are now, each step with its task, attempts and message."""
    nodes = {node.name: node for node in run.nodes.select_related("task")}
    view = view_of(run.steps or [], nodes)
    for name, info in view.nodes.items():
        node = nodes.get(name)
        info["task"] = node.task if node else None
        info["attempts"] = node.attempts if node else 0
        info["message"] = node.message if node else ""
    return view
