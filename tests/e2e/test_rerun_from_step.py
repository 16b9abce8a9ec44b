"""A seed run rerun from `stage_process` with test_size 0.3, through the SDK, a real server,
broker, server worker and step worker: the plan says what then happens, stage_data's task
and artifact are reused, the two steps below run again, and the diff shows the change."""

import json
import re

import pytest

from tests.e2e.test_seed_pipeline import EXAMPLE, SCRIPTS, STEP_NAMES, _newest, _run_of, seeded
from tests.support import run_script

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
__all__ = ["seeded"]


def _line(out: str, tag: str):
    return json.loads(re.search(rf"^{tag} (.*)$", out, re.M).group(1))


def test_a_seed_run_rerun_from_stage_process_reuses_stage_data_as_planned(cluster, seeded):
    env, _ = seeded
    result = run_script(EXAMPLE / "pipeline_from_tasks.py", env, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    first = _run_of(cluster, _newest(cluster, "pipeline demo")["id"])
    assert first["status"] == "completed"
    before = {node["name"]: node for node in first["nodes"]}
    # caching is off in the seed: each node says so, and that this is the first run
    for node in before.values():
        assert node["decision"]["outcome"] == "ran", node
        assert node["decision"]["reason"] == "caching off for this step"

    # a step of another run, or edits naming what the step does not have, are refused
    bad = cluster.server.api().post(
        f"{cluster.server.url}/api/v1/pipelines/{first['id']}/rerun_from/",
        json={
            "step": "stage_process",
            "parameter_override": {"stage_process": {"General/nope": 1}},
        },
        timeout=10,
    )
    assert bad.status_code == 400 and "no parameter" in bad.text, bad.text

    result = run_script(
        SCRIPTS / "rerun_seed.py", env, timeout=300, args=[first["id"], "stage_process", "0.3"]
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    plan = {step["name"]: step for step in _line(out, "PLAN")}
    assert {name: step["outcome"] for name, step in plan.items()} == {
        "stage_data": "reused",
        "stage_process": "ran",
        "stage_train": "ran",
    }
    assert "parameter `General/test_size` changed from 0.25 to 0.3" in out  # the printed plan
    rerun_id, source = re.search(r"^RERUN (\w+) of (\w+)$", out, re.M).groups()
    assert source == first["id"]
    second = cluster.get(f"pipelines/{rerun_id}/")
    assert second["status"] == "completed" and second["rerun_of"] == first["id"]
    assert second["rerun_from_step"] == "stage_process"
    after = {node["name"]: node for node in second["nodes"]}

    # the plan predicted each node's outcome and reason
    for name in STEP_NAMES:
        assert after[name]["decision"]["outcome"] == plan[name]["outcome"], name
        assert after[name]["decision"]["code"] == plan[name]["code"], name
    # stage_data: the same task, not run again, marked as reused from the first run
    data = after["stage_data"]
    assert data["status"] == "cached" and data["task"] == before["stage_data"]["task"]
    assert first["id"] in data["decision"]["reason"] and data["decision"]["run"] == first["id"]
    # the two below ran again, as new tasks, stage_process with the edit
    for name in ("stage_process", "stage_train"):
        assert after[name]["status"] == "completed"
        assert after[name]["task"] != before[name]["task"]
    process = cluster.task(after["stage_process"]["task"])
    assert process["hyperparameters"]["General"]["test_size"]["value"] == "0.3"
    dataset = next(
        a for a in cluster.get(f"tasks/{data['task']}/artifacts/") if a["name"] == "dataset"
    )
    assert process["hyperparameters"]["General"]["dataset_url"]["value"] == dataset["url"]
    assert "'test_size': 0.3" in cluster.console_text(process["id"])
    assert after["stage_process"]["decision"]["changes"] == [
        {
            "code": "parameter_changed",
            "text": "parameter `General/test_size` changed from 0.25 to 0.3",
            "parameter": "General/test_size",
        }
    ]
    train_changes = after["stage_train"]["decision"]["changes"]
    assert train_changes[0]["code"] == "parent_ran" and "stage_process" in train_changes[0]["text"]

    # the diff, as the SDK read it and as the API answers for the previous run
    for diff in (_line(out, "DIFF"), cluster.get(f"pipelines/{rerun_id}/diff/")):
        assert diff["a"]["id"] == first["id"] and diff["b"]["id"] == rerun_id
        steps = {step["name"]: step for step in diff["steps"]}
        assert steps["stage_data"]["same"] and steps["stage_data"]["status"]["same_task"]
        assert all(a["same"] for a in steps["stage_data"]["artifacts"])
        changed = [p for p in steps["stage_process"]["parameters"] if p["changed"]]
        assert {"name": "General/test_size", "a": "0.25", "b": "0.3", "changed": True} in changed
        assert not steps["stage_process"]["same"]
        assert diff["changed_steps"] == ["stage_process", "stage_train"]


def test_plan_then_start_predicts_each_node_and_a_cached_step_is_reused(cluster, seeded):
    """PipelineController.plan() before start(), twice: the first run with stage_data's
    caching on has no result with its key yet, the second reuses it."""
    env, _ = seeded
    outcomes = []
    for _ in range(2):
        result = run_script(SCRIPTS / "plan_then_start.py", env, timeout=300)
        assert result.returncode == 0, result.stderr + result.stdout
        plan = {step["name"]: step for step in _line(result.stdout, "PLAN")}
        controller = re.search(r"^CONTROLLER (\w+)$", result.stdout, re.M).group(1)
        run = _run_of(cluster, controller)
        assert run["status"] == "completed"
        nodes = {node["name"]: node for node in run["nodes"]}
        for name in STEP_NAMES:
            assert nodes[name]["decision"]["outcome"] == plan[name]["outcome"], (name, plan)
            assert nodes[name]["decision"]["code"] == plan[name]["code"], (name, plan)
        outcomes.append((plan, nodes))
    (first_plan, first), (second_plan, second) = outcomes
    assert first_plan["stage_data"]["outcome"] == "ran"
    assert second_plan["stage_data"]["outcome"] == "reused"
    assert second_plan["stage_data"]["code"] == "cache_hit"
    assert second["stage_data"]["status"] == "cached"
    assert (
        second["stage_data"]["task"]
        == first["stage_data"]["task"]
        == second_plan["stage_data"]["task"]
    )
    # the step below reads the reused dataset: nothing it depends on changed
    assert second["stage_process"]["decision"]["code"] == "caching_off"
    assert second["stage_process"]["decision"]["changes"] == []
