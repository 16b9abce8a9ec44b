"""Scalar rows to Plotly line charts: pure, so it is tested without a request."""

import math
from collections.abc import Iterable

# A browser draws a few thousand points per line smoothly; beyond that, thin evenly.
MAX_POINTS_PER_SERIES = 5000


def _finite(value):
    return value if value is not None and math.isfinite(value) else None


def _thin(xs: list, ys: list) -> tuple[list, list]:
    if len(xs) <= MAX_POINTS_PER_SERIES:
        return xs, ys
    step = math.ceil(len(xs) / MAX_POINTS_PER_SERIES)
    keep = list(range(0, len(xs), step))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)  # the last value is the one people look for
    return [xs[i] for i in keep], [ys[i] for i in keep]


def scalar_figures(points: Iterable[tuple[str, str, int, float | None]]) -> list[dict]:
    """One figure per title, one line per series; points are (title, series, iteration,
    value) sorted by title, series, iteration."""
    titles: dict[str, dict[str, tuple[list, list]]] = {}
    for title, series, iteration, value in points:
        xs, ys = titles.setdefault(title, {}).setdefault(series, ([], []))
        xs.append(iteration)
        ys.append(_finite(value))
    figures = []
    for title, series_map in titles.items():
        data = []
        for series, (xs, ys) in series_map.items():
            xs, ys = _thin(xs, ys)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers" if len(xs) < 50 else "lines",
                    "name": series,
                    "x": xs,
                    "y": ys,
                }
            )
        layout = {
            "title": {"text": title},
            "xaxis": {"title": {"text": "iteration"}},
            "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
            "height": 320,
            "showlegend": True,
            "legend": {"orientation": "h"},
        }
        figures.append({"title": title, "figure": {"data": data, "layout": layout}})
    return figures
