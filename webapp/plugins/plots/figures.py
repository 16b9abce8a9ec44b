"""Stored Plot rows to figures the page can draw: the latest iteration of each
title/series (as ClearML shows them), with a title and no NaN tokens."""

from collections.abc import Iterable

from webapp.dashboard.plugin_api import json_safe


def latest_plots(rows: Iterable) -> list[dict]:
    """`rows` are Plot-like objects ordered by title, series, iteration."""
    latest: dict[tuple[str, str], object] = {}
    for row in rows:
        latest[(row.title, row.series)] = row  # later iterations overwrite earlier
    plots = []
    for index, ((title, series), row) in enumerate(sorted(latest.items())):
        figure = row.figure if isinstance(row.figure, dict) else {}
        data = figure.get("data") if isinstance(figure.get("data"), list) else []
        layout = dict(figure.get("layout") or {}) if isinstance(figure.get("layout"), dict) else {}
        heading = f"{title} / {series}" if series else title
        layout.setdefault("title", {"text": heading})
        layout.setdefault("autosize", True)
        plots.append(
            {
                "id": f"plot-{index}",
                "title": title,
                "series": series,
                "iteration": row.iteration,
                "figure": json_safe({"data": data, "layout": layout}),
            }
        )
    return plots
