"""Unit tests for the pipeline DAG figure and table, built as plain Plotly dicts."""

import copy
import json
import re
import time

import pytest

from webapp.core.pipeline_figure import (
    BOX_WIDTH,
    MAX_ROWS,
    STATUS_COLORS,
    TABLE_COLUMNS,
    build_pipeline_figure,
    build_pipeline_table,
)

STEPS = [
    {"name": "stage_data", "parents": []},
    {"name": "stage_process", "parents": ["stage_data"]},
    {"name": "stage_train", "parents": ["stage_process", "stage_data"]},
    {"name": "stage_report", "parents": ["stage_data"]},
]
NODES = {
    "stage_data": {"status": "completed", "task_id": "a" * 32, "overrides": {}},
    "stage_process": {
        "status": "running",
        "task_id": "b" * 32,
        "overrides": {"General/dataset_url": "s3://b/<x>&y.csv", "General/test_size": 0.25},
    },
    "stage_train": {"status": "pending", "task_id": None, "overrides": {}},
    "stage_report": {"status": "failed", "task_id": "c" * 32, "overrides": {"k": 1}},
}


def node_traces(fig):
    return [t for t in fig["data"] if t.get("mode") == "markers"]


def edge_segments(fig) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """The edges' path (one shape, under the boxes) as ((x0, y0), (x1, y1)) segments."""
    found = []
    for edges in fig["layout"]["shapes"]:
        if edges["type"] == "path" and edges["visible"]:
            found += re.findall(r"M([-\d.e]+),([-\d.e]+)L([-\d.e]+),([-\d.e]+)", edges["path"])
    return [((float(a), float(b)), (float(c), float(d))) for a, b, c, d in found]


def boxes(fig) -> dict:
    """Each step's box, {name, x0, x1, y0, y1, fillcolor}, from the outline traces."""
    found = {}
    for trace in fig["data"]:
        if not trace["name"].startswith("boxes "):
            continue
        for i in range(0, len(trace["x"]), 6):
            xs, ys = trace["x"][i : i + 5], trace["y"][i : i + 5]
            name = trace["customdata"][i]
            found[name] = {
                "name": name,
                "x0": min(xs),
                "x1": max(xs),
                "y0": min(ys),
                "y1": max(ys),
                "fillcolor": trace["fillcolor"],
            }
    return found


def by_name(fig):
    found = {}
    for trace in node_traces(fig):
        for i, name in enumerate(trace["text"]):
            found[name] = {
                "status": trace["name"],
                "color": trace["marker"]["color"],
                "x": trace["x"][i],
                "y": trace["y"][i],
                "hover": trace["hovertext"][i],
                "task_id": trace["customdata"][i][1],
                "step": trace["customdata"][i][0],
            }
    return found


def test_figure_is_a_json_able_plotly_dict():
    # when
    fig = build_pipeline_figure(STEPS, NODES)
    # then
    assert set(fig) == {"data", "layout"}
    assert json.loads(json.dumps(fig)) == fig
    assert all(t["type"] == "scatter" for t in fig["data"])


def test_figure_is_accepted_by_plotly_when_installed():
    go = pytest.importorskip("plotly.graph_objects")
    go.Figure(build_pipeline_figure(STEPS, NODES))
    go.Figure(build_pipeline_table(STEPS, NODES))


def test_palette_covers_every_status_with_distinct_colours():
    expected = {"pending", "queued", "running", "completed", "cached", "failed", "skipped"}
    assert set(STATUS_COLORS) == expected | {"aborted"}
    assert len(set(STATUS_COLORS.values())) == len(STATUS_COLORS)


def test_one_legend_trace_per_status_present_in_fixed_order():
    # when
    traces = node_traces(build_pipeline_figure(STEPS, NODES))
    # then
    assert [t["name"] for t in traces] == ["pending", "running", "completed", "failed"]
    for trace in traces:
        assert trace["showlegend"] is True
        assert trace["marker"]["color"] == STATUS_COLORS[trace["name"]]
        assert trace["hoverinfo"] == "text"


def test_every_status_gets_its_colour():
    # given
    statuses = list(STATUS_COLORS)
    steps = [{"name": f"s{i}", "parents": []} for i in range(len(statuses))]
    nodes = {
        f"s{i}": {"status": s, "task_id": None, "overrides": {}} for i, s in enumerate(statuses)
    }
    # when
    found = by_name(build_pipeline_figure(steps, nodes))
    # then
    for i, status in enumerate(statuses):
        assert found[f"s{i}"]["color"] == STATUS_COLORS[status]


def test_edges_drawn_as_one_path_under_the_boxes():
    fig = build_pipeline_figure(STEPS, NODES)
    paths = [s for s in fig["layout"]["shapes"] if s["type"] == "path"]
    assert len(edge_segments(fig)) == 4  # four parent -> child edges
    assert all(path["layer"] == "below" for path in paths)
    (drawn,) = [path for path in paths if path["visible"]]
    assert drawn["opacity"] == 1  # no step here has many edges: none is faint


def test_edges_run_from_a_parent_box_right_side_to_its_child_left_side():
    # given
    fig = build_pipeline_figure(STEPS, NODES)
    found = by_name(fig)
    # then
    expected = set()
    for s in STEPS:
        for p in s["parents"]:
            a, b = found[p], found[s["name"]]
            expected.add(((a["x"] + BOX_WIDTH / 2, a["y"]), (b["x"] - BOX_WIDTH / 2, b["y"])))
    rounded = {tuple((round(x, 6), round(y, 6)) for x, y in seg) for seg in edge_segments(fig)}
    assert rounded == {tuple((round(x, 6), round(y, 6)) for x, y in seg) for seg in expected}


def test_each_step_is_a_box_in_its_status_colour_with_its_label():
    fig = build_pipeline_figure(STEPS, NODES)
    drawn = boxes(fig)
    assert set(drawn) == {s["name"] for s in STEPS}
    assert drawn["stage_report"]["fillcolor"] == STATUS_COLORS["failed"]
    (labels,) = [t for t in fig["data"] if t.get("mode") == "text"]
    text = dict(zip(labels["customdata"], labels["text"], strict=True))
    assert "<b>stage_report</b>" in text["stage_report"] and "failed" in text["stage_report"]


def test_a_box_shows_the_duration_and_resources_of_an_ended_step():
    from datetime import UTC, datetime

    nodes = {
        "a": {
            "status": "completed",
            "task_id": "t" * 32,
            "overrides": {},
            "duration": 72.0,
            "started": datetime(2026, 1, 1, tzinfo=UTC),
            "ended": datetime(2026, 1, 1, 0, 1, 12, tzinfo=UTC),
            "resources": {"cpu_seconds": 1.25, "peak_rss_bytes": 50 * 1024 * 1024},
        }
    }
    fig = build_pipeline_figure([{"name": "a", "parents": []}], nodes)
    (labels,) = [t for t in fig["data"] if t.get("mode") == "text"]
    assert "completed \u00b7 1m 12s" in labels["text"][0]
    assert "cpu 1.2s \u00b7 50.0 MB" in labels["text"][0]
    assert "duration: 1m 12s" in by_name(fig)["a"]["hover"]


def test_two_hundred_parallel_steps_wrap_into_columns_of_boxes_that_never_overlap():
    steps = [{"name": "root", "parents": []}]
    steps += [{"name": f"s{i}", "parents": ["root"]} for i in range(200)]
    steps.append({"name": "join", "parents": [f"s{i}" for i in range(200)]})
    fig = build_pipeline_figure(steps, {})
    drawn = sorted(boxes(fig).values(), key=lambda b: (b["x0"], b["y0"]))
    assert len(drawn) == 202
    for i, a in enumerate(drawn):
        for b in drawn[i + 1 :]:
            if b["x0"] >= a["x1"]:
                break
            assert b["y0"] >= a["y1"] or b["y1"] <= a["y0"], (a["name"], b["name"])
    # no column is taller than MAX_ROWS boxes, and the figure is drawn at a readable size
    columns: dict = {}
    for b in drawn:
        columns[b["x0"]] = columns.get(b["x0"], 0) + 1
    assert max(columns.values()) <= MAX_ROWS
    assert fig["layout"]["width"] >= 170 * len(columns)
    # the fan's 400 edges are drawn faint, so they do not drown the boxes
    (faint,) = [s for s in fig["layout"]["shapes"] if s["name"] == "dependencies (many)"]
    assert faint["visible"] and faint["opacity"] < 1 and faint["path"].count("M") == 400


def test_layers_follow_longest_path_from_roots():
    found = by_name(build_pipeline_figure(STEPS, NODES))
    assert found["stage_data"]["x"] == 0
    assert found["stage_process"]["x"] == 1
    assert found["stage_report"]["x"] == 1
    assert found["stage_train"]["x"] == 2  # longest path, not the direct edge from the root


def test_nodes_in_a_layer_are_spread_vertically():
    found = by_name(build_pipeline_figure(STEPS, NODES))
    assert found["stage_process"]["y"] != found["stage_report"]["y"]
    assert found["stage_process"]["y"] + found["stage_report"]["y"] == 0  # centred


def test_hover_text_lists_name_status_task_and_escaped_overrides():
    # when
    found = by_name(build_pipeline_figure(STEPS, NODES))
    hover = found["stage_process"]["hover"]
    # then
    lines = hover.split("<br>")
    assert "stage_process" in lines[0]
    assert lines[1] == "status: running"
    assert "b" * 32 in lines[2]
    assert "General/dataset_url: s3://b/&lt;x&gt;&amp;y.csv" in lines
    assert "General/test_size: 0.25" in lines
    assert "<x>" not in hover


def test_customdata_carries_task_ids_for_click_through():
    found = by_name(build_pipeline_figure(STEPS, NODES))
    assert found["stage_data"]["task_id"] == "a" * 32
    assert found["stage_train"]["task_id"] is None


def test_steps_without_node_record_are_pending():
    # when
    found = by_name(build_pipeline_figure(STEPS, {}))
    # then
    assert {n["status"] for n in found.values()} == {"pending"}
    assert found["stage_train"]["color"] == STATUS_COLORS["pending"]


def test_long_values_are_truncated_in_hover():
    nodes = {"a": {"status": "completed", "task_id": "t", "overrides": {"cfg": "x" * 5000}}}
    fig = build_pipeline_figure([{"name": "a", "parents": []}], nodes)
    hover = by_name(fig)["a"]["hover"]
    assert len(hover) < 400 and "cfg: xxx" in hover


def test_figure_is_deterministic_and_does_not_mutate_inputs():
    # given
    steps, nodes = copy.deepcopy(STEPS), copy.deepcopy(NODES)
    # when
    first = build_pipeline_figure(steps, nodes)
    second = build_pipeline_figure(steps, nodes)
    # then
    assert json.dumps(first) == json.dumps(second)
    assert (steps, nodes) == (STEPS, NODES)


def test_cycle_and_unknown_parent_are_still_drawn():
    # given: stored data the validator would reject
    steps = [{"name": "a", "parents": ["b"]}, {"name": "b", "parents": ["a", "ghost"]}]
    # when
    fig = build_pipeline_figure(steps, {})
    # then
    assert set(by_name(fig)) == {"a", "b"}
    assert len(edge_segments(fig)) == 2


def test_empty_pipeline_gives_an_empty_figure():
    fig = build_pipeline_figure([], {})
    assert node_traces(fig) == []
    assert edge_segments(fig) == []


def test_thousand_nodes_render_quickly():
    # given: ten parallel chains of 100 steps joined by a final step
    steps = []
    for c in range(10):
        for i in range(100):
            parents = [f"c{c}_{i - 1}"] if i else []
            steps.append({"name": f"c{c}_{i}", "parents": parents})
    steps.append({"name": "join", "parents": [f"c{c}_99" for c in range(10)]})
    nodes = {
        s["name"]: {"status": "completed", "task_id": s["name"], "overrides": {"p": 1}}
        for s in steps
    }
    # when
    started = time.perf_counter()
    fig = build_pipeline_figure(steps, nodes)
    table = build_pipeline_table(steps, nodes)
    elapsed = time.perf_counter() - started
    # then
    assert elapsed < 1.0
    assert len(edge_segments(fig)) == 10 * 99 + 10
    assert by_name(fig)["join"]["x"] == 100
    assert len(table["data"][0]["cells"]["values"][0]) == len(steps)


def test_table_has_one_row_per_step_in_topological_order():
    # when
    table = build_pipeline_table(STEPS, NODES)
    # then
    (trace,) = table["data"]
    assert trace["type"] == "table"
    assert TABLE_COLUMNS == ("step", "status", "duration", "task id", "parameters")
    assert [h.replace("<b>", "").replace("</b>", "") for h in trace["header"]["values"]] == list(
        TABLE_COLUMNS
    )
    names, statuses, durations, ids, params = trace["cells"]["values"]
    assert names == ["stage_data", "stage_process", "stage_train", "stage_report"]
    # ids cut to 8 characters so the table fits its card
    assert ids == ["a" * 8, "b" * 8, "", "c" * 8]
    assert durations == [""] * 4
    assert len(trace["columnwidth"]) == len(TABLE_COLUMNS)
    assert statuses == ["completed", "running", "pending", "failed"]
    # long lines are broken to fit the column (Plotly's table never wraps), never inside
    # an escaped character
    lines = params[1].split("<br>")
    assert (
        "".join(lines) == "General/dataset_url: s3://b/&lt;x&gt;&amp;y.csvGeneral/test_size: 0.25"
    )
    assert lines[-1] == "General/test_size: 0.25"
    assert all(
        len(line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")) <= 30
        for line in lines
    )
    assert trace["cells"]["fill"]["color"][1][3] == STATUS_COLORS["failed"]


def test_table_is_deterministic():
    assert json.dumps(build_pipeline_table(STEPS, NODES)) == json.dumps(
        build_pipeline_table(STEPS, NODES)
    )
