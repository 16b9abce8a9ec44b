"""Matplotlib figures as Plotly JSON: lines, scatters and bars; anything else as a PNG image."""

import base64
import io


def figure_to_plotly(figure) -> dict:
    data = []
    layout: dict = {"title": {"text": figure._suptitle.get_text() if figure._suptitle else ""}}
    axes = figure.get_axes()
    for ax in axes:
        for line in ax.get_lines():
            x, y = line.get_data()
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines" if line.get_linestyle() not in ("None", "") else "markers",
                    "x": list(map(float, x)),
                    "y": list(map(float, y)),
                    "name": line.get_label() if not line.get_label().startswith("_") else "",
                }
            )
        for collection in ax.collections:
            offsets = collection.get_offsets()
            if len(offsets):
                data.append(
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "x": [float(p[0]) for p in offsets],
                        "y": [float(p[1]) for p in offsets],
                        "marker": {"color": _colors(collection)},
                    }
                )
        if ax.get_title():
            layout["title"] = {"text": ax.get_title()}
        layout["xaxis"] = {"title": {"text": ax.get_xlabel()}}
        layout["yaxis"] = {"title": {"text": ax.get_ylabel()}}
    if data:
        return {"data": data, "layout": layout}
    return image_figure(figure)


def _colors(collection) -> list[str]:
    colors = collection.get_facecolors()
    return [
        f"rgba({r * 255:.0f},{g * 255:.0f},{b * 255:.0f},{a:.2f})" for r, g, b, a in colors
    ] or ["#1f77b4"]


def image_figure(figure) -> dict:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return {
        "data": [],
        "layout": {
            "images": [
                {
                    "source": f"data:image/png;base64,{encoded}",
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0,
                    "y": 1,
                    "sizex": 1,
                    "sizey": 1,
                    "xanchor": "left",
                    "yanchor": "top",
                }
            ],
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
        },
    }
