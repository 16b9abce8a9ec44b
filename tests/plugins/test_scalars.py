import json
import math

from webapp.core import events
from webapp.plugins.scalars.figures import MAX_POINTS_PER_SERIES, scalar_figures


def test_one_figure_per_title_and_one_line_per_series():
    points = [
        ("loss", "train", 0, 1.0),
        ("loss", "train", 1, 0.5),
        ("loss", "val", 0, 1.2),
        ("lr", "lr", 0, 0.1),
    ]
    figures = scalar_figures(points)
    assert [f["title"] for f in figures] == ["loss", "lr"]
    loss = figures[0]["figure"]
    assert [trace["name"] for trace in loss["data"]] == ["train", "val"]
    assert loss["data"][0]["x"] == [0, 1] and loss["data"][0]["y"] == [1.0, 0.5]


def test_non_finite_values_become_gaps_so_the_page_can_parse_them():
    figures = scalar_figures([("t", "s", 0, math.nan), ("t", "s", 1, math.inf), ("t", "s", 2, 1.0)])
    assert figures[0]["figure"]["data"][0]["y"] == [None, None, 1.0]
    json.dumps(figures, allow_nan=False)


def test_long_series_are_thinned_but_keep_their_last_point():
    n = MAX_POINTS_PER_SERIES * 3 + 7
    trace = scalar_figures(("t", "s", i, float(i)) for i in range(n))[0]["figure"]["data"][0]
    assert len(trace["x"]) <= MAX_POINTS_PER_SERIES + 1
    assert trace["x"][0] == 0 and trace["x"][-1] == n - 1


def test_scalars_tab_embeds_the_figures(admin_client, task):
    events.ingest_events(
        task, [{"type": "scalar", "title": "acc", "series": "val", "iteration": 1, "value": 0.9}]
    )
    page = admin_client.get(f"/tasks/{task.id}/scalars/")
    assert page.context["active_tab"].plotly
    assert b'id="scalar-0"' in page.content
    assert b"/vendor/plotly-" in page.content
