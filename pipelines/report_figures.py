"""Plotly figures for ClearML's Logger.report_* calls: pure functions of the reported data.

Each checks its input and raises ValueError (naming what is wrong) before anything is
sent, so a bad call fails in the caller's line, not later on the server.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# A table or matrix past this many cells is refused: a browser cannot show it usefully.
MAX_CELLS = 200_000


@dataclass
class SeriesInfo:
    """One line of report_line_plot: its name, an (N, 2) array of x, y, optional labels."""

    name: str
    data: Any
    labels: list | None = field(default=None)


def _values(values, what: str, ndim: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be numbers: {error}") from error
    if array.ndim not in ndim:
        raise ValueError(f"{what} must have {' or '.join(map(str, ndim))} dimensions")
    if array.size > MAX_CELLS:
        raise ValueError(f"{what} has {array.size} values; the limit is {MAX_CELLS}")
    return array


def _list(array) -> list:
    flat = np.asarray(array, dtype=float)
    return [
        [v if math.isfinite(v) else None for v in row]
        if isinstance(row, list)
        else (row if math.isfinite(row) else None)
        for row in flat.tolist()
    ]


def _layout(title: str, series: str, xaxis=None, yaxis=None, comment=None, extra=None) -> dict:
    heading = f"{title} - {series}" if series else title
    if comment:
        heading += f"<br><sup>{comment}</sup>"
    layout: dict = {"title": {"text": heading}}
    if xaxis:
        layout["xaxis"] = {"title": {"text": str(xaxis)}}
    if yaxis:
        layout["yaxis"] = {"title": {"text": str(yaxis)}}
    return _merge(layout, extra)


def _merge(base: dict, extra: dict | None) -> dict:
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _merge(dict(base[key]), value)
        else:
            base[key] = value
    return base


def histogram(
    title, series, values, labels=None, xlabels=None, xaxis=None, yaxis=None, mode=None,
    data_args=None, extra_layout=None,
) -> dict:  # fmt: skip
    """Bars of precomputed bins: one trace for a vector, one per row of a matrix."""
    array = _values(values, "values", (1, 2))
    rows = array if array.ndim == 2 else array[None, :]
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"{len(labels)} labels for {len(rows)} histogram rows")
    x = list(xlabels) if xlabels is not None else list(range(rows.shape[1]))
    if len(x) != rows.shape[1]:
        raise ValueError(f"{len(x)} xlabels for {rows.shape[1]} bins")
    data = [
        _merge(
            {
                "type": "bar",
                "name": str(labels[i]) if labels is not None else series,
                "x": x,
                "y": _list(row),
            },
            data_args,
        )
        for i, row in enumerate(rows)
    ]
    layout = _layout(title, series, xaxis, yaxis, extra=extra_layout)
    layout["barmode"] = mode or "group"
    return {"data": data, "layout": layout}


def scatter2d(
    title, series, scatter, xaxis=None, yaxis=None, labels=None, mode="lines", comment=None,
    extra_layout=None,
) -> dict:  # fmt: skip
    array = _values(scatter, "scatter", (2,))
    if array.shape[1] != 2:
        raise ValueError("scatter must be (x, y) pairs: an array of shape (N, 2)")
    trace = {"type": "scatter", "mode": mode, "name": series}
    trace.update(x=_list(array[:, 0]), y=_list(array[:, 1]))
    if labels is not None:
        if len(labels) != len(array):
            raise ValueError(f"{len(labels)} labels for {len(array)} points")
        trace["text"] = [str(label) for label in labels]
    return {"data": [trace], "layout": _layout(title, series, xaxis, yaxis, comment, extra_layout)}


def scatter3d(
    title, series, scatter, xaxis=None, yaxis=None, zaxis=None, labels=None, mode="markers",
    fill=False, comment=None, extra_layout=None,
) -> dict:  # fmt: skip
    if (
        isinstance(scatter, list)
        and scatter
        and isinstance(scatter[0], np.ndarray | list)
        and (np.asarray(scatter[0], dtype=object).ndim == 2)
    ):
        groups = [_values(group, "scatter", (2,)) for group in scatter]
    else:
        groups = [_values(scatter, "scatter", (2,))]
    data = []
    for index, array in enumerate(groups):
        if array.shape[1] != 3:
            raise ValueError("scatter must be (x, y, z) triples: an array of shape (N, 3)")
        trace = {
            "type": "scatter3d",
            "mode": mode,
            "name": series if len(groups) == 1 else f"{series} {index}",
            "x": _list(array[:, 0]),
            "y": _list(array[:, 1]),
            "z": _list(array[:, 2]),
        }
        if fill:
            trace["surfaceaxis"] = 2
        if labels is not None and len(groups) == 1:
            trace["text"] = [str(label) for label in labels]
        data.append(trace)
    layout = _layout(title, series, comment=comment)
    layout["scene"] = {
        "xaxis": {"title": {"text": str(xaxis or "")}},
        "yaxis": {"title": {"text": str(yaxis or "")}},
        "zaxis": {"title": {"text": str(zaxis or "")}},
    }
    return {"data": data, "layout": _merge(layout, extra_layout)}


def _axis_labels(matrix: np.ndarray, xlabels, ylabels) -> tuple[list, list]:
    rows, cols = matrix.shape
    if xlabels is not None and len(xlabels) != cols:
        raise ValueError(f"{len(xlabels)} xlabels for {cols} columns")
    if ylabels is not None and len(ylabels) != rows:
        raise ValueError(f"{len(ylabels)} ylabels for {rows} rows")
    x = [str(v) for v in xlabels] if xlabels is not None else list(range(cols))
    y = [str(v) for v in ylabels] if ylabels is not None else list(range(rows))
    return x, y


def confusion_matrix(
    title, series, matrix, xaxis=None, yaxis=None, xlabels=None, ylabels=None,
    yaxis_reversed=False, comment=None, extra_layout=None,
) -> dict:  # fmt: skip
    """A heatmap with each cell's value written in it (ClearML's texttemplate)."""
    array = _values(matrix, "matrix", (2,))
    x, y = _axis_labels(array, xlabels, ylabels)
    trace = {
        "type": "heatmap",
        "z": _list(array),
        "x": x,
        "y": y,
        # light to dark with the count, as matplotlib's Blues (Plotly's runs the other way)
        "colorscale": [[0.0, "#f7fbff"], [0.5, "#6baed6"], [1.0, "#08306b"]],
        "texttemplate": "%{z}",
    }
    if extra_layout and "texttemplate" in extra_layout:
        extra_layout = dict(extra_layout)
        trace["texttemplate"] = extra_layout.pop("texttemplate")
    layout = _layout(title, series, xaxis, yaxis, comment, extra_layout)
    layout.setdefault("yaxis", {})["autorange"] = "reversed" if yaxis_reversed else True
    for axis, labels in (("xaxis", xlabels), ("yaxis", ylabels)):
        if labels is not None:
            layout.setdefault(axis, {})["type"] = "category"
    return {"data": [trace], "layout": layout}


def surface(
    title, series, matrix, xaxis=None, yaxis=None, zaxis=None, xlabels=None, ylabels=None,
    camera=None, comment=None, extra_layout=None,
) -> dict:  # fmt: skip
    array = _values(matrix, "matrix", (2,))
    x, y = _axis_labels(array, xlabels, ylabels)
    layout = _layout(title, series, comment=comment)
    scene: dict = {
        "xaxis": {"title": {"text": str(xaxis or "")}},
        "yaxis": {"title": {"text": str(yaxis or "")}},
        "zaxis": {"title": {"text": str(zaxis or "")}},
    }
    if camera is not None:
        cx, cy, cz = (float(v) for v in camera)
        scene["camera"] = {"eye": {"x": cx, "y": cy, "z": cz}}
    layout["scene"] = scene
    trace = {"type": "surface", "z": _list(array), "x": x, "y": y}
    return {"data": [trace], "layout": _merge(layout, extra_layout)}


def line_plot(
    title, series, xaxis, yaxis, mode="lines", reverse_xaxis=False, comment=None,
    extra_layout=None,
) -> dict:  # fmt: skip
    data = []
    for item in series:
        info = SeriesInfo(**item) if isinstance(item, dict) else item
        array = _values(info.data, f"series {info.name!r}", (2,))
        if array.shape[1] != 2:
            raise ValueError(f"series {info.name!r} must be (x, y) pairs")
        trace = {
            "type": "scatter",
            "mode": mode,
            "name": str(info.name),
            "x": _list(array[:, 0]),
            "y": _list(array[:, 1]),
        }
        if info.labels is not None:
            trace["text"] = [str(label) for label in info.labels]
        data.append(trace)
    layout = _layout(title, "", xaxis, yaxis, comment, extra_layout)
    if reverse_xaxis:
        layout.setdefault("xaxis", {})["autorange"] = "reversed"
    return {"data": data, "layout": layout}


def table(title, series, rows_or_frame, extra_layout=None, extra_data=None) -> dict:
    """A Plotly table from a DataFrame (with its index as the first column unless it is a
    plain range, as ClearML shows it) or a list of rows whose first row is the header."""
    if hasattr(rows_or_frame, "columns") and hasattr(rows_or_frame, "index"):
        frame = rows_or_frame
        header = [str(c) for c in frame.columns]
        columns = [[_cell(v) for v in frame[c].tolist()] for c in frame.columns]
        if type(frame.index).__name__ != "RangeIndex":  # a meaningful index is a column
            index_name = "" if frame.index.name is None else str(frame.index.name)
            header.insert(0, index_name)
            columns.insert(0, [_cell(v) for v in frame.index.tolist()])
    elif isinstance(rows_or_frame, list | tuple):
        rows = [list(row) if isinstance(row, list | tuple) else None for row in rows_or_frame]
        if not rows or any(row is None for row in rows):
            raise ValueError("table_plot must be a DataFrame or a non-empty list of rows")
        width = len(rows[0])
        if any(len(row) != width for row in rows):
            raise ValueError("every row of table_plot must have as many cells as the header")
        header = [str(c) for c in rows[0]]
        columns = [[_cell(row[i]) for row in rows[1:]] for i in range(width)]
    else:
        raise ValueError(
            f"table_plot must be a pandas DataFrame or a list of rows, not "
            f"{type(rows_or_frame).__name__}"
        )
    cells = len(header) * (len(columns[0]) if columns else 0)
    if cells > MAX_CELLS:
        raise ValueError(f"the table has {cells} cells; the limit is {MAX_CELLS}")
    trace = _merge(
        {"type": "table", "header": {"values": header}, "cells": {"values": columns}}, extra_data
    )
    return {"data": [trace], "layout": _layout(title, series, extra=extra_layout)}


def _cell(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Inf" if value > 0 else "-Inf")
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)
