import json
from types import SimpleNamespace

from webapp.core import events
from webapp.plugins.plots.figures import latest_plots


def _row(title, series, iteration, figure):
    return SimpleNamespace(title=title, series=series, iteration=iteration, figure=figure)


def test_only_the_latest_iteration_of_each_title_and_series_is_shown():
    rows = [
        _row("roc", "test", 1, {"data": [{"y": [1]}]}),
        _row("roc", "test", 5, {"data": [{"y": [5]}], "layout": {"title": {"text": "ROC"}}}),
        _row("cm", "", 0, {"data": [{"z": [[float("nan")]]}]}),
    ]
    plots = latest_plots(rows)
    assert [(p["title"], p["iteration"]) for p in plots] == [("cm", 0), ("roc", 5)]
    assert plots[1]["figure"]["layout"]["title"] == {"text": "ROC"}
    assert plots[0]["figure"]["layout"]["title"] == {"text": "cm"}
    assert plots[0]["figure"]["data"][0]["z"] == [[None]]
    json.dumps(plots, allow_nan=False)


def test_a_malformed_stored_figure_is_drawn_empty_rather_than_failing():
    plots = latest_plots([_row("bad", "s", 0, {"data": "nope", "layout": 3})])
    assert plots[0]["figure"]["data"] == []


def test_plots_tab_lists_the_reported_figures(admin_client, task):
    figure = {"data": [{"type": "bar", "y": [1, 2]}], "layout": {}}
    events.ingest_events(
        task, [{"type": "plot", "title": "Pipeline", "series": "Execution Flow", "figure": figure}]
    )
    page = admin_client.get(f"/tasks/{task.id}/plots/")
    assert b'data-title="Pipeline"' in page.content
    assert b'class="plot dag"' in page.content  # clicking a step of the DAG plot opens it
