"""Plotly figures for a pipeline run, built as plain dicts.

The page ships the dict straight to plotly.js, so neither plotly nor Django is needed
here, and the function stays pure and quick to test. The layout code is deliberately
tolerant (unknown parents are ignored, a cycle is drawn rather than refused): a broken
stored pipeline should still be visible, and validation is ``pipelines.dag``'s job.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

STATUS_ORDER = (
    "pending",
    "queued",
    "running",
    "completed",
    "cached",
    "failed",
    "skipped",
    "aborted",
)
STATUS_COLORS = {
    "pending": "#9e9e9e",
    "queued": "#81d4fa",
    "running": "#1e88e5",
    "completed": "#43a047",
    "cached": "#00897b",
    "failed": "#e53935",
    "skipped": "#d6d6d6",
    "aborted": "#fb8c00",
}
UNKNOWN_STATUS_COLOR = "#424242"
EDGE_COLOR = "#b0b0b0"
MAX_VALUE_CHARS = 120  # a hover box holding a whole config file is unreadable

TABLE_COLUMNS = ("step", "task id", "status", "parameters")


def _short(value: Any) -> str:
    text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "\u2026"
    return escape(text)


def _node(nodes: Mapping[str, Mapping[str, Any]], name: str) -> tuple[str, Any, Mapping, Mapping]:
    """A step the engine has not reached yet has no node record: show it as pending."""
    info = nodes.get(name) or {}
    return (
        str(info.get("status") or "pending"),
        info.get("task_id"),
        # As given: the run's view (engine/_view.py) has masked them for its readers.
        info.get("overrides") or {},
        info,
    )


def _graph(steps: Sequence[Mapping[str, Any]]) -> tuple[list[str], dict[str, list[str]]]:
    names: list[str] = []
    seen: set[str] = set()
    for step in steps:
        name = str(step.get("name"))
        if name not in seen:
            seen.add(name)
            names.append(name)
    parents: dict[str, list[str]] = {}
    for step in steps:
        name = str(step.get("name"))
        if name in parents:
            continue
        unique = dict.fromkeys(p for p in step.get("parents") or [] if p in seen and p != name)
        parents[name] = list(unique)
    return names, parents


def _layers(names: list[str], parents: dict[str, list[str]]) -> tuple[list[str], dict[str, int]]:
    """Topological order and depth (longest path from a root), both in O((V+E) log V)."""
    index = {name: i for i, name in enumerate(names)}
    children: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for parent in parents[name]:
            children[parent].append(name)
    waiting = {name: len(parents[name]) for name in names}
    ready = [i for i, name in enumerate(names) if not waiting[name]]
    depth = dict.fromkeys(names, 0)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for child in children[name]:
            depth[child] = max(depth[child], depth[name] + 1)
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, index[child])
    if len(order) < len(names):  # a cycle: park the leftovers in one extra column
        last = max((depth[name] for name in order), default=-1) + 1
        for name in names:
            if waiting[name]:
                order.append(name)
                depth[name] = last
    return order, depth


def _positions(
    order: list[str], depth: dict[str, int], parents: dict[str, list[str]]
) -> dict[str, tuple[float, float]]:
    """Each column is sorted by the mean row of a node's parents (one barycenter pass),
    which removes most edge crossings at the cost of one sort per column."""
    columns: dict[int, list[str]] = {}
    for name in order:
        columns.setdefault(depth[name], []).append(name)
    rank: dict[str, float] = {}
    pos: dict[str, tuple[float, float]] = {}
    sequence = {name: i for i, name in enumerate(order)}
    for column in sorted(columns):
        members = columns[column]

        def key(name: str) -> tuple[float, int]:
            placed = [rank[p] for p in parents[name] if p in rank]
            return (sum(placed) / len(placed) if placed else 0.0, sequence[name])

        if column:
            members.sort(key=key)
        middle = (len(members) - 1) / 2
        for row, name in enumerate(members):
            rank[name] = row - middle
            pos[name] = (float(column), middle - row)  # first member on top
    return pos


def _hover(
    name: str, status: str, task_id: Any, overrides: Mapping[str, Any], info: Mapping
) -> str:
    lines = [
        f"<b>{escape(name)}</b>",
        f"status: {escape(status)}",
        f"task: {escape(str(task_id)) if task_id else '-'}",
        *_described(info),
    ]
    lines.extend(f"{escape(str(key))}: {_short(value)}" for key, value in overrides.items())
    return "<br>".join(lines)


def function_call(function: Mapping) -> str:
    """`name(kwarg=value, ...)` of a function step, as defined (kwargs already masked)."""
    kwargs = function.get("kwargs") or {}
    order = {name: i for i, name in enumerate(function.get("parameters") or [])}
    ordered = sorted(kwargs.items(), key=lambda item: order.get(item[0], len(order)))
    shown = ", ".join(f"{key}={value}" for key, value in ordered)
    return f"{function.get('name')}({shown})"


def _described(info: Mapping) -> list[str]:
    """A function step's function and returns, a fan-out's items: lines of its hover."""
    lines = []
    function = info.get("function")
    if isinstance(function, Mapping):
        lines.append(f"function: {_short(function_call(function))}")
        if function.get("returns"):
            lines.append(f"returns: {escape(', '.join(map(str, function['returns'])))}")
    fan_out = info.get("map")
    if isinstance(fan_out, Mapping):
        lines.append(f"map over {escape(str(fan_out.get('kwarg')))}: {_items(fan_out)}")
    return lines


def _items(fan_out: Mapping) -> str:
    total = fan_out.get("total")
    if total is None:
        return "items known when it starts"
    return escape(
        f"{total} items, {fan_out.get('completed', 0)} completed, {fan_out.get('failed', 0)} "
        f"failed (min_success_ratio {fan_out.get('min_success_ratio')})"
    )


def _status_rank(status: str) -> tuple[int, str]:
    try:
        return (STATUS_ORDER.index(status), "")
    except ValueError:
        return (len(STATUS_ORDER), status)


@dataclasses.dataclass(frozen=True)
class PipelineLayout:
    """Everything in the figures that depends on the steps only, not on their states: a
    caller that re-plots one run many times computes it once (layout_pipeline)."""

    order: list[str]
    depth: dict[str, int]
    pos: dict[str, tuple[float, float]]
    edges: dict[str, Any]
    layout: dict[str, Any]


def layout_pipeline(steps: Sequence[Mapping[str, Any]]) -> PipelineLayout:
    names, parents = _graph(steps)
    order, depth = _layers(names, parents)
    pos = _positions(order, depth, parents)

    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for name in order:
        x1, y1 = pos[name]
        for parent in parents[name]:
            x0, y0 = pos[parent]
            edge_x.extend((x0, x1, None))
            edge_y.extend((y0, y1, None))
    edges = {
        "type": "scatter",
        "mode": "lines",
        "name": "dependencies",
        "x": edge_x,
        "y": edge_y,
        "line": {"color": EDGE_COLOR, "width": 1.5},
        "hoverinfo": "skip",
        "showlegend": False,
    }
    column_sizes: dict[int, int] = {}
    for name in order:
        column_sizes[depth[name]] = column_sizes.get(depth[name], 0) + 1
    widest = max(column_sizes.values(), default=1)
    hidden_axis = {"visible": False, "showgrid": False, "zeroline": False, "fixedrange": False}
    layout = {
        "showlegend": True,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "hovermode": "closest",
        "clickmode": "event",
        "margin": {"l": 20, "r": 20, "t": 40, "b": 20},
        "height": max(320, min(2400, 70 * widest + 80)),
        "xaxis": {**hidden_axis, "range": [-0.5, max(column_sizes, default=0) + 0.5]},
        "yaxis": dict(hidden_axis),
        "plot_bgcolor": "rgba(0,0,0,0)",
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    return PipelineLayout(order, depth, pos, edges, layout)


def build_pipeline_figure(
    steps: Sequence[Mapping[str, Any]],
    nodes: Mapping[str, Mapping[str, Any]],
    layout: PipelineLayout | None = None,
) -> dict[str, Any]:
    """The DAG drawn left to right, one marker trace per status so the legend explains
    the colours, and task ids in ``customdata`` so a click can open the step's task."""
    if layout is None:
        layout = layout_pipeline(steps)
    order, pos = layout.order, layout.pos
    # Shallow copies: the cached layout's lists are shared, never mutated.
    data: list[dict[str, Any]] = [dict(layout.edges)]

    groups: dict[str, dict[str, list[Any]]] = {}
    for name in order:
        status, task_id, overrides, info = _node(nodes, name)
        group = groups.setdefault(
            status, {"x": [], "y": [], "text": [], "hovertext": [], "customdata": []}
        )
        x, y = pos[name]
        group["x"].append(x)
        group["y"].append(y)
        group["text"].append(name)
        group["hovertext"].append(_hover(name, status, task_id, overrides, info))
        group["customdata"].append(task_id)
    for status in sorted(groups, key=_status_rank):
        group = groups[status]
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": status,
                "legendgroup": status,
                "showlegend": True,
                **group,
                "textposition": "top center",
                "hoverinfo": "text",
                "marker": {
                    "color": STATUS_COLORS.get(status, UNKNOWN_STATUS_COLOR),
                    "size": 18,
                    "line": {"color": "#333333", "width": 1},
                },
            }
        )

    return {"data": data, "layout": dict(layout.layout)}


def build_pipeline_table(
    steps: Sequence[Mapping[str, Any]],
    nodes: Mapping[str, Mapping[str, Any]],
    layout: PipelineLayout | None = None,
) -> dict[str, Any]:
    """The same run as a table, for pipelines too large to read as a graph; rows follow
    the graph's topological order."""
    if layout is not None:
        order = layout.order
    else:
        names, parents = _graph(steps)
        order, _ = _layers(names, parents)
    columns: list[list[str]] = [[], [], [], []]
    status_fill: list[str] = []
    for name in order:
        status, task_id, overrides, info = _node(nodes, name)
        columns[0].append(escape(name))
        columns[1].append(escape(str(task_id)) if task_id else "")
        columns[2].append(escape(status))
        columns[3].append(
            "<br>".join(
                [
                    *_described(info),
                    *(f"{escape(str(k))}: {_short(v)}" for k, v in overrides.items()),
                ]
            )
        )
        status_fill.append(STATUS_COLORS.get(status, UNKNOWN_STATUS_COLOR))

    def white() -> list[str]:
        return ["#ffffff"] * len(order)

    return {
        "data": [
            {
                "type": "table",
                "header": {
                    "values": [f"<b>{title}</b>" for title in TABLE_COLUMNS],
                    "align": "left",
                    "fill": {"color": "#eeeeee"},
                },
                "cells": {
                    "values": columns,
                    "align": "left",
                    "fill": {"color": [white(), white(), status_fill, white()]},
                },
            }
        ],
        "layout": {
            "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
            "height": max(200, min(2400, 30 * len(order) + 60)),
        },
    }
