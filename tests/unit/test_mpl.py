"""The matplotlib conversion read as data (the browser gallery compares the pictures)."""

import base64
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from pipelines.mpl import figure_to_plotly  # noqa: E402
from tests.browser import mpl_gallery  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_the_seeds_iris_scatter_keeps_its_colours_limits_and_hidden_ticks():
    figure = mpl_gallery.iris_types()
    drawn = figure.axes[0].collections[0]
    converted = figure_to_plotly(figure)
    marker = converted["data"][0]["marker"]
    _, labels = mpl_gallery._iris()
    assert marker["color"] == labels.astype(float).tolist()
    assert (marker["cmin"], marker["cmax"]) == (0.0, 2.0)
    # the colour Plotly picks for each class is the one matplotlib drew
    figure.draw_without_rendering()
    drawn_colours = {tuple(np.round(c[:3] * 255).astype(int)) for c in drawn.get_facecolors()}
    scale = dict((round(p, 6), c) for p, c in marker["colorscale"])
    picked = set()
    for value in (0, 1, 2):
        position = (value - 0) / 2
        stops = [c for p, c in marker["colorscale"] if p <= position + 1e-9]
        picked.add(tuple(int(v) for v in stops[-1][5:-1].split(",")[:3]))
    assert picked == drawn_colours and len(picked) == 3, (picked, drawn_colours, scale)
    layout = converted["layout"]
    assert layout["xaxis"]["range"] == [3.8, 8.4] and layout["yaxis"]["range"] == [1.5, 4.9]
    assert layout["xaxis"]["tickvals"] == [] and layout["yaxis"]["tickvals"] == []
    assert [a["text"] for a in layout["annotations"]] == ["Iris Types"]


def test_bars_and_images_are_traces_not_a_small_picture():
    converted = figure_to_plotly(mpl_gallery.bars_with_errors())
    bars = [t for t in converted["data"] if t["type"] == "bar"]
    assert [b["y"] for b in bars] == [[3.0, 5.0, 2.0, 4.0], [2.0, 4.0, 3.0, 1.0]]
    assert bars[1]["error_y"]["array"] == [0.5] * 4
    heatmap = figure_to_plotly(mpl_gallery.heatmap_with_colorbar())
    assert heatmap["data"][0]["type"] == "heatmap" and heatmap["data"][0]["showscale"]
    assert heatmap["data"][0]["colorbar"]["title"]["text"] == "value"


def test_a_figure_it_cannot_convert_is_its_png_at_full_size():
    figure = mpl_gallery.surface_3d()
    figure.set_size_inches(6, 4)
    converted = figure_to_plotly(figure)
    layout = converted["layout"]
    assert converted["data"] == [] and "Axes3D" in layout["meta"]["reason"]
    png = base64.b64decode(layout["images"][0]["source"].split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (600, 400) == (layout["width"], layout["height"])


def test_no_value_in_a_converted_figure_is_nan():
    figure, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, np.nan, 3])
    converted = figure_to_plotly(figure)
    assert converted["data"][0]["y"] == [1.0, None, 3.0]
