"""Fan-out on real workers: a map over a list one step makes at run time, its items in
batches bounded by max_parallel, ending by min_success_ratio, its results collected in
order for the next step."""

from pathlib import Path

import pytest

from tests.support import run_script, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
SCRIPTS = Path(__file__).parent / "scripts"
FEW = [3, 13, 23, 33, 43]  # 5 of 50: 90 % succeed
MANY = [n for n in range(50) if n % 10 in (3, 5, 7)]  # 15 of 50: 70 % succeed


def _start(cluster, queue, failing) -> str:
    result = run_script(
        SCRIPTS / "fan_out.py",
        cluster.server.sdk_env(),
        timeout=120,
        args=[queue, "50", ",".join(map(str, failing))],
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout.split("RUN ")[1].split()[0]


def _ended(cluster, run_id):
    def ended():
        run = cluster.get(f"pipelines/{run_id}/")
        return run if run["status"] != "running" else None

    return wait_until(ended, timeout=180, interval=0.25, message=f"run {run_id} to end")


def test_a_fan_out_completes_when_enough_items_succeed_and_fails_naming_them_when_not(cluster):
    queue = cluster.queue("fanout")
    cluster.start_worker(queue)
    cluster.start_worker(queue)
    few, many = _start(cluster, queue, FEW), _start(cluster, queue, MANY)

    run = _ended(cluster, few)
    nodes = {node["name"]: node for node in run["nodes"]}
    assert run["status"] == "completed", {n: v["message"] for n, v in nodes.items()}
    assert nodes["square"]["status"] == "completed"
    page = cluster.get(f"pipelines/{few}/items/", step="square")
    assert page["count"] == 50
    items = page["items"]
    assert [item["index"] for item in items] == list(range(50))
    assert [item["index"] for item in items if item["status"] == "failed"] == FEW
    assert "fails on purpose" in items[3]["message"]
    assert items[4]["values"] == {"y": 16}
    assert len({item["task"] for item in items}) == 5  # 10 items per task
    # the results, in order, are the map's artifact: None where an item failed
    collected = cluster.get(f"tasks/{nodes['square']['task']}/artifacts/")
    (results,) = [a for a in collected if a["name"] == "y"]
    assert results["kind"] == "json" and results["metadata"]["failed_items"] == FEW
    total = cluster.console_text(nodes["total"]["task"])
    expected = sum(n * n for n in range(50) if n not in FEW)
    assert f"TOTAL {expected} OF 45" in total

    run = _ended(cluster, many)
    nodes = {node["name"]: node for node in run["nodes"]}
    assert run["status"] == "failed"
    square = nodes["square"]
    assert square["status"] == "failed" and square["task"] is None
    assert "15 of 50 items failed" in square["message"]
    assert f"items {', '.join(map(str, MANY))}" in square["message"]
    assert nodes["total"]["status"] == "skipped"
    controller = cluster.task(run["controller"])
    assert controller["status"] == "failed" and "square" in controller["status_reason"]
