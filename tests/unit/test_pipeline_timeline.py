"""The run's timeline, a plain Plotly dict: one bar per step that ran in this run."""

from datetime import UTC, datetime, timedelta

from webapp.core.pipeline_figure import STATUS_COLORS
from webapp.core.pipeline_timeline import build_pipeline_timeline

ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)


def _at(seconds):
    return ORIGIN + timedelta(seconds=seconds)


NODES = {
    "a": {"status": "completed", "task_id": "t1", "started": _at(1), "ended": _at(4)},
    "<b>x</b>": {"status": "failed", "task_id": "t2", "started": _at(4), "ended": _at(5)},
    "c": {"status": "running", "task_id": "t3", "started": _at(5), "ended": None},
    "d": {"status": "pending", "task_id": None, "started": None, "ended": None},
    "e": {"status": "cached", "task_id": "t0", "started": None, "ended": None},
}


def test_each_step_that_ran_is_a_bar_from_its_start_in_the_dags_order():
    fig = build_pipeline_timeline(list(NODES), NODES, ORIGIN, _at(9))
    bars = {
        name: (trace["name"], base, length)
        for trace in fig["data"]
        for name, base, length in zip(trace["y"], trace["base"], trace["x"], strict=True)
    }
    assert bars == {
        "a": ("completed", 1.0, 3.0),
        "&lt;b&gt;x&lt;/b&gt;": ("failed", 4.0, 1.0),  # escaped: the axis draws pseudo-HTML
        "c": ("running", 5.0, 4.0),  # up to now while it runs
    }
    assert fig["layout"]["yaxis"]["categoryarray"] == ["a", "&lt;b&gt;x&lt;/b&gt;", "c"]
    colors = {trace["name"]: trace["marker"]["color"] for trace in fig["data"]}
    assert colors["failed"] == STATUS_COLORS["failed"]
    # a click on a bar names its step and task
    (running,) = [t for t in fig["data"] if t["name"] == "running"]
    assert running["customdata"] == [["c", "t3"]]


def test_a_thousand_bars_keep_a_bounded_height_and_leave_their_names_to_the_hover():
    nodes = {
        f"s{i}": {"status": "completed", "started": _at(i), "ended": _at(i + 1)}
        for i in range(1000)
    }
    fig = build_pipeline_timeline(list(nodes), nodes, ORIGIN, _at(2000))
    assert fig["layout"]["height"] <= 2400
    assert fig["layout"]["yaxis"]["showticklabels"] is False
