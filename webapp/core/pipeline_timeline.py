"""A pipeline run's timeline (a Gantt chart of its steps), built as a plain Plotly dict.

Pure, like pipeline_figure: it reads each step's `started` and `ended` (datetimes, ended
None while the step runs) from the run's view and draws one horizontal bar per step that
ran in this run, in the DAG's order, from the run's start. Steps that never started (pending,
skipped) and cached ones (they reused a task of another run) have no bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

from .pipeline_figure import (
    STATUS_COLORS,
    UNKNOWN_STATUS_COLOR,
    format_seconds,
    resources_text,
    status_rank,
)

BAR_PX = 22
# Past this many bars the names leave the axis (the hover has them) and the bars thin out to
# keep the chart within MAX_HEIGHT_PX: a thousand labelled rows are slow to draw and to read.
NAMED_BARS = 120
MAX_HEIGHT_PX = 2400


def build_pipeline_timeline(
    order: Sequence[str], nodes: Mapping[str, Mapping[str, Any]], origin: datetime, now: datetime
) -> dict[str, Any]:
    """Bars of seconds since `origin` (the run's start), one trace per status."""
    groups: dict[str, dict[str, list[Any]]] = {}
    names: list[str] = []
    for name in order:
        info = nodes.get(name) or {}
        started = info.get("started")
        if started is None:
            continue
        ended = info.get("ended") or now
        status = str(info.get("status") or "pending")
        start = (started - origin).total_seconds()
        length = max((ended - started).total_seconds(), 0.0)
        group = groups.setdefault(
            status, {"y": [], "x": [], "base": [], "hovertext": [], "customdata": []}
        )
        # The axis draws its categories as Plotly's pseudo-HTML: a name is escaped there.
        group["y"].append(escape(name))
        group["x"].append(round(length, 3))
        group["base"].append(round(start, 3))
        hover = [
            f"<b>{escape(name)}</b>",
            f"status: {escape(status)}",
            f"from {format_seconds(start)} to {format_seconds(start + length)}"
            + ("" if info.get("ended") else " (running)"),
            f"duration: {format_seconds(length)}",
        ]
        used = resources_text(info.get("resources"))
        if used:
            hover.append(escape(used))
        group["hovertext"].append("<br>".join(hover))
        group["customdata"].append([name, info.get("task_id")])
        names.append(escape(name))
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": status,
            **groups[status],
            "marker": {"color": STATUS_COLORS.get(status, UNKNOWN_STATUS_COLOR)},
            "hoverinfo": "text",
        }
        for status in sorted(groups, key=status_rank)
    ]
    layout = {
        "barmode": "overlay",
        "showlegend": bool(data),
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        "hovermode": "closest",
        "hoverlabel": {"align": "left", "font": {"size": 11}},
        "margin": {"l": 10, "r": 10, "t": 36, "b": 40},
        "height": min(MAX_HEIGHT_PX, max(160, BAR_PX * len(names) + 90)),
        "xaxis": {"title": {"text": "seconds since the run started"}, "rangemode": "tozero"},
        # Steps top to bottom in the DAG's order, each name once.
        "yaxis": {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": names,
            "autorange": "reversed",
            "automargin": True,
            "showticklabels": len(names) <= NAMED_BARS,
        },
        "plot_bgcolor": "rgba(0,0,0,0)",
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    return {"data": data, "layout": layout}
