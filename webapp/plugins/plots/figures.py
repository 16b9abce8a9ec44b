"""Stored Plot rows to figures the page can draw: the latest iteration of each
title/series (as ClearML shows them), with a title and no NaN tokens. A figure that is only
a picture (a matplotlib figure sent as its PNG) is shown as that picture, full width."""

import re
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
        picture = _picture(data, layout)
        layout.setdefault("title", {"text": heading})
        layout.setdefault("autosize", True)
        plots.append(
            {
                "id": f"plot-{index}",
                "title": title,
                "series": series,
                "iteration": row.iteration,
                "figure": json_safe({"data": data, "layout": layout}),
                "image": picture,
                "heading": heading,
            }
        )
    return plots


# What an <img src> may point at: inline raster images, or http(s) URLs.
_IMAGE_SOURCE = re.compile(r"^(data:image/(png|jpeg|gif|webp);base64,|https?://)", re.I)


def _picture(data: list, layout: dict) -> str:
    """The image source of a figure that holds nothing but one layout image, else ""."""
    images = layout.get("images")
    if data or not isinstance(images, list) or len(images) != 1:
        return ""
    source = images[0].get("source") if isinstance(images[0], dict) else None
    return source if isinstance(source, str) and _IMAGE_SOURCE.match(source) else ""
