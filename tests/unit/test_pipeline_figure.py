"""Unit tests for the pipeline DAG figure and table, built as plain Plotly dicts."""

import copy
import json
import time

import pytest

from webapp.core.pipeline_figure import (
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
    return [t for t in fig["data"] if t.get("mode") == "markers+text"]


def edge_trace(fig):
    (edges,) = [t for t in fig["data"] if t.get("mode") == "lines"]
    return edges


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
                "task_id": trace["customdata"][i],
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


def test_edges_drawn_as_one_trace_with_separators():
    # when
    edges = edge_trace(build_pipeline_figure(STEPS, NODES))
    # then: four parent -> child edges, three points each
    assert len(edges["x"]) == len(edges["y"]) == 4 * 3
    assert edges["x"][2::3] == [None] * 4
    assert edges["showlegend"] is False and edges["hoverinfo"] == "skip"


def test_edges_run_from_parent_to_child_positions():
    # given
    fig = build_pipeline_figure(STEPS, NODES)
    found = by_name(fig)
    edges = edge_trace(fig)
    # when
    segments = {
        ((edges["x"][i], edges["y"][i]), (edges["x"][i + 1], edges["y"][i + 1]))
        for i in range(0, len(edges["x"]), 3)
    }
    # then
    expected = set()
    for s in STEPS:
        for p in s["parents"]:
            a, b = found[p], found[s["name"]]
            expected.add(((a["x"], a["y"]), (b["x"], b["y"])))
    assert segments == expected


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
    assert len(edge_trace(fig)["x"]) == 2 * 3


def test_empty_pipeline_gives_an_empty_figure():
    fig = build_pipeline_figure([], {})
    assert node_traces(fig) == []
    assert edge_trace(fig)["x"] == []


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
    assert len(edge_trace(fig)["x"]) == (10 * 99 + 10) * 3
    assert by_name(fig)["join"]["x"] == 100
    assert len(table["data"][0]["cells"]["values"][0]) == len(steps)


def test_table_has_one_row_per_step_in_topological_order():
    # when
    table = build_pipeline_table(STEPS, NODES)
    # then
    (trace,) = table["data"]
    assert trace["type"] == "table"
    assert TABLE_COLUMNS == ("step", "task id", "status", "parameters")
    assert [h.replace("<b>", "").replace("</b>", "") for h in trace["header"]["values"]] == list(
        TABLE_COLUMNS
    )
    names, ids, statuses, params = trace["cells"]["values"]
    assert names == ["stage_data", "stage_process", "stage_train", "stage_report"]
    assert ids == ["a" * 32, "b" * 32, "", "c" * 32]
    assert statuses == ["completed", "running", "pending", "failed"]
    assert params[1].split("<br>") == [
        "General/dataset_url: s3://b/&lt;x&gt;&amp;y.csv",
        "General/test_size: 0.25",
    ]
    assert trace["cells"]["fill"]["color"][2][3] == STATUS_COLORS["failed"]


def test_table_is_deterministic():
    assert json.dumps(build_pipeline_table(STEPS, NODES)) == json.dumps(
        build_pipeline_table(STEPS, NODES)
    )
