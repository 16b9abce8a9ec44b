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
# Statuses light enough that a box's label is written in dark ink, the others in white.
LIGHT_STATUSES = frozenset({"pending", "queued", "skipped", "cached"})
EDGE_COLOR = "#9aa0a6"
# A hover box holding a whole config file is unreadable, and one wider than its card
# overflows it: values are cut, long lines broken, and the overrides listed are capped.
MAX_VALUE_CHARS = 120
HOVER_LINE_CHARS = 60
MAX_HOVER_OVERRIDES = 12
LABEL_CHARS = 22  # of a step's name on its box (the hover and the panel have it whole)

# A box is BOX_WIDTH x BOX_HEIGHT of its cell (one column by one row, in axis units),
# drawn COLUMN_PX x ROW_PX when the figure is wider than the card and scrolls.
MAX_ROWS = 16
FAN_EDGES = 12  # more parents or children than this: the step's edges are drawn faint
BOX_WIDTH, BOX_HEIGHT = 0.84, 0.78
COLUMN_PX, ROW_PX = 170, 64
FITS_CARD_PX = 1000

TABLE_COLUMNS = ("step", "status", "duration", "task id", "parameters")
# Characters per line in the table's narrow columns at the size of a Plots card, and the
# pixels a line and a row's padding take (the figure's height follows its rows).
TABLE_NAME_CHARS, TABLE_VALUE_CHARS = 14, 30
TABLE_HEADER_PX, TABLE_LINE_PX, TABLE_PAD_PX = 28, 15, 10


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
) -> tuple[dict[str, tuple[float, float]], int, int]:
    """Positions (column, row), the number of columns and of rows in the tallest one.

    Each layer (a longest-path depth) is sorted by the mean rank of a node's parents (one
    barycenter pass, which removes most edge crossings at one sort per layer), then cut
    into columns of at most MAX_ROWS boxes side by side: a layer of 200 parallel steps
    becomes a block of columns you can read, not 200 boxes squeezed into one column."""
    layers: dict[int, list[str]] = {}
    for name in order:
        layers.setdefault(depth[name], []).append(name)
    rank: dict[str, float] = {}
    pos: dict[str, tuple[float, float]] = {}
    sequence = {name: i for i, name in enumerate(order)}
    column, tallest = 0, 0
    for layer in sorted(layers):
        members = layers[layer]

        def key(name: str) -> tuple[float, int]:
            placed = [rank[p] for p in parents[name] if p in rank]
            return (sum(placed) / len(placed) if placed else 0.0, sequence[name])

        if layer:
            members.sort(key=key)
        for index, name in enumerate(members):
            rank[name] = index - (len(members) - 1) / 2
        for start in range(0, len(members), MAX_ROWS):
            chunk = members[start : start + MAX_ROWS]
            middle = (len(chunk) - 1) / 2
            tallest = max(tallest, len(chunk))
            for row, name in enumerate(chunk):
                pos[name] = (float(column), middle - row)  # first member on top
            column += 1
    return pos, column, tallest


def _hover(
    name: str, status: str, task_id: Any, overrides: Mapping[str, Any], info: Mapping
) -> str:
    lines = [
        f"<b>{escape(_cut(name, MAX_VALUE_CHARS))}</b>",
        f"status: {escape(status)}",
        f"task: {escape(str(task_id)) if task_id else '-'}",
    ]
    if _ended_duration(info) is not None:
        lines.append(f"duration: {format_seconds(info['duration'])}")
    elif info.get("started") is not None:
        lines.append(f"started: {escape(info['started'].strftime('%Y-%m-%d %H:%M:%S'))}")
    used = resources_text(info.get("resources"))
    if used:
        lines.append(escape(used))
    lines.extend(_described(info))
    shown = list(overrides.items())
    lines.extend(_hover_line(f"{key}: {value}") for key, value in shown[:MAX_HOVER_OVERRIDES])
    if len(shown) > MAX_HOVER_OVERRIDES:
        lines.append(f"\u2026 {len(shown) - MAX_HOVER_OVERRIDES} more (click the step)")
    return "<br>".join(lines)


def _hover_line(text: str) -> str:
    """One entry of a hover box: cut at MAX_VALUE_CHARS, in lines of HOVER_LINE_CHARS."""
    return "<br>".join(_wrapped(_cut(str(text), MAX_VALUE_CHARS), HOVER_LINE_CHARS))


def _ended_duration(info: Mapping) -> float | None:
    """A step's duration once it has ended. While it runs the figure shows none: a figure
    that changed on every poll would be redrawn on every poll, dropping the user's hover."""
    return info.get("duration") if info.get("ended") is not None else None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def format_seconds(seconds: float | None) -> str:
    """1.2s, 3m 04s, 2h 05m: a duration as a label has room for it."""
    if seconds is None:
        return ""
    seconds = max(float(seconds), 0.0)
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_bytes(size: float | None) -> str:
    if size is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit in ("B", "KB") else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def resources_text(resources: Mapping | None) -> str:
    """`cpu 1.2s · 45.0 MB · gpu 3.0s`, what a step used as measured; empty if nothing was."""
    if not resources:
        return ""
    parts = []
    if resources.get("cpu_seconds") is not None:
        parts.append(f"cpu {format_seconds(resources['cpu_seconds'])}")
    if resources.get("peak_rss_bytes") is not None:
        parts.append(format_bytes(resources["peak_rss_bytes"]))
    if resources.get("gpu_seconds") is not None:
        parts.append(f"gpu {format_seconds(resources['gpu_seconds'])}")
    return " \u00b7 ".join(parts)


def _label(name: str, status: str, info: Mapping) -> str:
    """The text on a step's box: its name, its status and duration, what it used."""
    second = escape(status)
    if _ended_duration(info) is not None:
        second += f" \u00b7 {format_seconds(info['duration'])}"
    lines = [f"<b>{escape(_cut(name, LABEL_CHARS))}</b>", second]
    used = info.get("resources") or {}
    short = " \u00b7 ".join(
        part
        for part in (
            f"cpu {format_seconds(used['cpu_seconds'])}"
            if used.get("cpu_seconds") is not None
            else "",
            format_bytes(used.get("peak_rss_bytes")),
        )
        if part
    )
    if short:
        lines.append(escape(short))
    return "<br>".join(lines)


def function_call(function: Mapping) -> str:
    """`name(kwarg=value, ...)` of a function step, as defined (kwargs already masked)."""
    kwargs = function.get("kwargs") or {}
    order = {name: i for i, name in enumerate(function.get("parameters") or [])}
    ordered = sorted(kwargs.items(), key=lambda item: order.get(item[0], len(order)))
    shown = ", ".join(f"{key}={value}" for key, value in ordered)
    return f"{function.get('name')}({shown})"


def _wrapped(text: str, width: int) -> list[str]:
    """`text` in escaped lines of at most `width` characters (cut before escaping, so no
    entity is split)."""
    return [escape(text[i : i + width]) for i in range(0, len(text), width)] or [""]


def _described_raw(info: Mapping) -> list[str]:
    """_described's lines, unescaped (the table escapes as it wraps)."""
    lines = []
    function = info.get("function")
    if isinstance(function, Mapping):
        lines.append(f"function: {_cut(function_call(function), MAX_VALUE_CHARS)}")
    fan_out = info.get("map")
    if isinstance(fan_out, Mapping):
        total = fan_out.get("total")
        lines.append(
            f"map over {fan_out.get('kwarg')}: "
            + ("items known when it starts" if total is None else f"{total} items")
        )
    return lines


def _described(info: Mapping) -> list[str]:
    """A function step's function and returns, a fan-out's items: lines of its hover."""
    lines = []
    function = info.get("function")
    if isinstance(function, Mapping):
        lines.append(_hover_line(f"function: {function_call(function)}"))
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


def status_rank(status: str) -> tuple[int, str]:
    try:
        return (STATUS_ORDER.index(status), "")
    except ValueError:
        return (len(STATUS_ORDER), status)


def progress_segments(counts: dict, total: int) -> list[dict]:
    """The parts of a run's progress bar: one per status with steps, in STATUS_ORDER."""
    return [
        {
            "status": status,
            "count": counts[status],
            "percent": round(100 * counts[status] / total, 2) if total else 0,
            "color": STATUS_COLORS.get(status, UNKNOWN_STATUS_COLOR),
        }
        for status in sorted(counts, key=status_rank)
        if counts[status]
    ]


@dataclasses.dataclass(frozen=True)
class PipelineLayout:
    """Everything in the figures that depends on the steps only, not on their states: a
    caller that re-plots one run many times computes it once (layout_pipeline)."""

    order: list[str]
    depth: dict[str, int]
    pos: dict[str, tuple[float, float]]
    edges: list[dict[str, Any]]
    layout: dict[str, Any]


def layout_pipeline(steps: Sequence[Mapping[str, Any]]) -> PipelineLayout:
    names, parents = _graph(steps)
    order, depth = _layers(names, parents)
    pos, columns, tallest = _positions(order, depth, parents)

    # Edges leave a box at its right side and enter the next at its left, in one path
    # drawn under the boxes, so a long edge never hides a label.
    half = BOX_WIDTH / 2
    # A step with many parents or children (a fan-out's root, its join) draws its edges
    # faint: a hundred lines at full strength hide the few that tell the graph's shape.
    children_of: dict[str, int] = {}
    for name in order:
        for parent in parents[name]:
            children_of[parent] = children_of.get(parent, 0) + 1
    paths: dict[bool, list[str]] = {False: [], True: []}
    for name in order:
        x1, y1 = pos[name]
        for parent in parents[name]:
            x0, y0 = pos[parent]
            faint = len(parents[name]) > FAN_EDGES or children_of[parent] > FAN_EDGES
            if x0 < x1:
                paths[faint].append(f"M{x0 + half:g},{y0:g}L{x1 - half:g},{y1:g}")
            else:  # a cycle's leftovers, or a wrapped layer: centre to centre
                paths[faint].append(f"M{x0:g},{y0:g}L{x1:g},{y1:g}")
    edges = [
        {
            "type": "path",
            "name": "dependencies (many)" if faint else "dependencies",
            "path": "".join(paths[faint]) or "M0,0",
            "xref": "x",
            "yref": "y",
            "layer": "below",
            "opacity": 0.35 if faint else 1,
            "line": {"color": EDGE_COLOR, "width": 0.8 if faint else 1.2},
            "visible": bool(paths[faint]),
        }
        for faint in (True, False)
    ]
    natural_width = COLUMN_PX * max(columns, 1) + 40
    hidden_axis = {"visible": False, "showgrid": False, "zeroline": False}
    extent = max((tallest - 1) / 2, 0) + 0.5
    layout = {
        "showlegend": True,
        # Below the boxes: a page that titles the figure puts the title above them.
        "legend": {"orientation": "h", "x": 0, "y": 0, "yanchor": "top"},
        "hovermode": "closest",
        "hoverdistance": 40,
        "hoverlabel": {"align": "left", "font": {"size": 11}},
        "clickmode": "event",
        "dragmode": "pan",
        "margin": {"l": 10, "r": 10, "t": 44, "b": 36},
        "height": ROW_PX * max(tallest, 1) + 80,
        "xaxis": {**hidden_axis, "range": [-0.5, max(columns, 1) - 0.5]},
        "yaxis": {**hidden_axis, "range": [-extent, extent]},
        "plot_bgcolor": "rgba(0,0,0,0)",
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    if natural_width > FITS_CARD_PX:
        # Too many columns for a card: drawn at its natural size, the card scrolls.
        layout["width"] = natural_width
    return PipelineLayout(order, depth, pos, edges, layout)


def build_pipeline_figure(
    steps: Sequence[Mapping[str, Any]],
    nodes: Mapping[str, Mapping[str, Any]],
    layout: PipelineLayout | None = None,
) -> dict[str, Any]:
    """The DAG drawn left to right in layers: each step a box (a closed outline) filled
    with its status colour and labelled with its name, status, duration and resources.

    Over each box sits a square marker of the same colour in one trace per status: it
    catches hover and clicks, and the legend explains the colours. `customdata` holds
    [step name, task id] so a click can open the step (its panel, or its task)."""
    if layout is None:
        layout = layout_pipeline(steps)
    order, pos = layout.order, layout.pos
    # Boxes are filled polygons, one trace per status (gaps between boxes): a thousand
    # layout shapes take Plotly several times longer to draw.
    outlines: dict[str, dict[str, list[Any]]] = {}
    groups: dict[str, dict[str, list[Any]]] = {}
    labels: dict[str, list[Any]] = {"x": [], "y": [], "text": [], "color": [], "names": []}
    half_w, half_h = BOX_WIDTH / 2, BOX_HEIGHT / 2
    for name in order:
        status, task_id, overrides, info = _node(nodes, name)
        x, y = pos[name]
        outline = outlines.setdefault(status, {"x": [], "y": [], "customdata": []})
        left, right, low, high = x - half_w, x + half_w, y - half_h, y + half_h
        outline["x"].extend((left, right, right, left, left, None))
        outline["y"].extend((low, low, high, high, low, None))
        outline["customdata"].extend([name] * 6)
        group = groups.setdefault(
            status, {"x": [], "y": [], "text": [], "hovertext": [], "customdata": []}
        )
        group["x"].append(x)
        group["y"].append(y)
        group["text"].append(name)
        group["hovertext"].append(_hover(name, status, task_id, overrides, info))
        group["customdata"].append([name, task_id])
        labels["x"].append(x)
        labels["y"].append(y)
        labels["text"].append(_label(name, status, info))
        labels["color"].append("#212121" if status in LIGHT_STATUSES else "#ffffff")
        labels["names"].append(name)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"boxes {status}",
            **outlines[status],
            "fill": "toself",
            "fillcolor": STATUS_COLORS.get(status, UNKNOWN_STATUS_COLOR),
            "line": {"color": "#37474f", "width": 1},
            "hoverinfo": "skip",
            "showlegend": False,
        }
        for status in sorted(outlines, key=status_rank)
    ]
    for status in sorted(groups, key=status_rank):
        group = groups[status]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": status,
                "legendgroup": status,
                "showlegend": True,
                **group,
                "hoverinfo": "text",
                "marker": {
                    "color": STATUS_COLORS.get(status, UNKNOWN_STATUS_COLOR),
                    "symbol": "square",
                    "size": 26,
                    "line": {"width": 0},
                },
            }
        )
    if order:
        data.append(
            {
                "type": "scatter",
                "mode": "text",
                "name": "labels",
                "x": labels["x"],
                "y": labels["y"],
                "text": labels["text"],
                "customdata": labels["names"],
                "textfont": {"size": 10, "color": labels["color"]},
                "hoverinfo": "skip",
                "showlegend": False,
            }
        )
    figure_layout = dict(layout.layout)
    figure_layout["shapes"] = [dict(edge) for edge in layout.edges]
    return {"data": data, "layout": figure_layout}


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
    columns: list[list[str]] = [[], [], [], [], []]
    status_fill: list[str] = []
    status_ink: list[str] = []
    height = TABLE_HEADER_PX
    for name in order:
        status, task_id, overrides, info = _node(nodes, name)
        # Plotly's table never wraps a cell: long text is broken here, or it runs out of
        # its column and off the card.
        name_lines = _wrapped(_cut(name, 40), TABLE_NAME_CHARS)
        columns[0].append("<br>".join(name_lines))
        columns[1].append(escape(status))
        columns[2].append(format_seconds(_ended_duration(info)))
        # The first 8 characters name a task well enough here, and keep the column narrow.
        columns[3].append(escape(str(task_id)[:8]) if task_id else "")
        shown = list(overrides.items())
        texts = [*_described_raw(info)]
        texts += [_cut(f"{k}: {v}", MAX_VALUE_CHARS) for k, v in shown[:MAX_HOVER_OVERRIDES]]
        if len(shown) > MAX_HOVER_OVERRIDES:
            texts.append(f"\u2026 {len(shown) - MAX_HOVER_OVERRIDES} more")
        parameter_lines = [line for text in texts for line in _wrapped(text, TABLE_VALUE_CHARS)]
        columns[4].append("<br>".join(parameter_lines))
        height += TABLE_LINE_PX * max(len(name_lines), len(parameter_lines), 1) + TABLE_PAD_PX
        status_fill.append(STATUS_COLORS.get(status, UNKNOWN_STATUS_COLOR))
        status_ink.append("#212121" if status in LIGHT_STATUSES else "#ffffff")

    def plain(color: str) -> list[str]:
        return [color] * len(order)

    return {
        "data": [
            {
                "type": "table",
                # Relative widths: the parameters take what the card has left.
                "columnwidth": [2.6, 2, 1.9, 1.9, 5],
                "header": {
                    "values": [f"<b>{title}</b>" for title in TABLE_COLUMNS],
                    "align": "left",
                    "fill": {"color": "#eeeeee"},
                    "height": 26,
                },
                "cells": {
                    "values": columns,
                    "align": "left",
                    "height": 24,
                    "font": {
                        "size": 11,
                        "color": [
                            plain("#212121"),
                            status_ink,
                            plain("#212121"),
                            plain("#212121"),
                            plain("#212121"),
                        ],
                    },
                    "fill": {
                        "color": [
                            plain("#ffffff"),
                            status_fill,
                            plain("#ffffff"),
                            plain("#ffffff"),
                            plain("#ffffff"),
                        ]
                    },
                },
            }
        ],
        "layout": {
            # Room above the header for the title the page gives the figure.
            "margin": {"l": 4, "r": 4, "t": 44, "b": 4},
            "height": max(200, min(2400, height + 60)),
        },
    }
