"""Faults of pipelines built or fanned out as they run (reliability.md R95-R99): a killed
decorator script, a worker dying mid-batch, lists a fan-out cannot take, pickled returns
without the opt-in."""

import re
import sys
from pathlib import Path

import pytest

from tests.support import pid_alive, run_script, start_process, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
SCRIPTS = Path(__file__).parent / "scripts"
# created after each test (conftest.release_steps), so no step is left waiting
HANDSHAKE_FILES = ("go",)


def _ended(cluster, run_id, timeout=120):
    def ended():
        run = cluster.get(f"pipelines/{run_id}/")
        return run if run["status"] != "running" else None

    return wait_until(ended, timeout=timeout, interval=0.2, message=f"run {run_id} to end")


def _nodes(run):
    return {node["name"]: node for node in run["nodes"]}


def _run_id(output: str) -> str:
    return re.search(r"(?:RUN |/pipelines/runs/)([0-9a-f]{32})", output).group(1)


def test_a_killed_decorator_script_stops_its_run_and_aborts_its_running_step(cluster, tmp_path):
    queue = cluster.queue("hold")
    cluster.start_worker(queue)
    script = start_process(
        "decorator",
        [sys.executable, str(SCRIPTS / "decorator_hold.py"), queue, str(tmp_path)],
        cluster.server.sdk_env(),
        tmp_path / "decorator.log",
    )
    script.wait_for_log("started: ", timeout=60)
    run_id = _run_id(script.log())

    def holding():
        node = _nodes(cluster.get(f"pipelines/{run_id}/")).get("hold")
        return node if node and node["status"] == "running" else None

    held = wait_until(holding, timeout=60, message="the component to run")
    # when the script that adds the run's steps dies (SIGKILL: nothing of it runs on)
    script.kill()
    # then its pings stop, its controller fails, and the open run stops with its step
    run = _ended(cluster, run_id, timeout=30)
    assert run["status"] == "stopped", run
    assert _nodes(run)["hold"]["status"] == "aborted"
    assert cluster.wait_for_status(held["task"], "stopped", timeout=15)["status"] == "stopped"
    controller = cluster.task(run["controller"])
    assert controller["status"] == "failed" and "stopped pinging" in controller["status_reason"]


def test_a_killed_controller_takes_the_steps_it_runs_as_subprocesses_down_with_it(
    cluster, tmp_path
):
    script = start_process(
        "local-controller",
        [sys.executable, str(SCRIPTS / "local_hold.py"), str(tmp_path)],
        cluster.server.sdk_env(),
        tmp_path / "controller.log",
    )
    pid_file = tmp_path / "step.pid"
    wait_until(pid_file.exists, timeout=60, message="the step to start")
    step_pid = int(pid_file.read_text())
    run_id = _run_id(script.log())
    # when the controller is killed (its process group: the step runs in another)
    script.kill()
    # then its step supervisor kills the step at once; the pings of both stop, and the
    # run ends (failed by its step, or stopped with its controller, whichever is first)
    wait_until(lambda: not pid_alive(step_pid), timeout=10, message="the step to die")
    run = _ended(cluster, run_id, timeout=30)
    assert run["status"] in ("failed", "stopped")
    task = cluster.task(_nodes(run)["hold"]["task"])
    assert task["status"] in ("failed", "stopped") and task["completed"], task


def test_the_items_of_a_batch_whose_worker_dies_fail_with_its_reason_and_the_map_goes_on(
    cluster, tmp_path
):
    queue = cluster.queue("held")
    workers = [cluster.start_worker(queue), cluster.start_worker(queue)]
    result = run_script(
        SCRIPTS / "fan_out_held.py", cluster.server.sdk_env(), args=[queue, str(tmp_path)]
    )
    assert result.returncode == 0, result.stderr
    run_id = _run_id(result.stdout)
    wait_until((tmp_path / "entered").exists, timeout=60, message="item 7 to start")
    items = cluster.get(f"pipelines/{run_id}/items/", step="work")["items"]
    holder = cluster.task(items[7]["task"])["worker"]
    # when the worker running item 7's batch is killed with its step
    next(worker for worker in workers if worker.name == holder).kill()
    # then that batch's unreported items fail with the reaper's reason, and enough of the
    # map succeeded (the other batch) for it to complete, collected on the other worker
    run = _ended(cluster, run_id)
    assert run["status"] == "completed", _nodes(run)
    items = cluster.get(f"pipelines/{run_id}/items/", step="work")["items"]
    assert [item["status"] for item in items[:5]] == ["completed"] * 5
    assert items[7]["status"] == "failed" and "stopped heartbeating" in items[7]["message"]
    assert all(item["status"] == "failed" for item in items[7:])
    collected = cluster.get(f"tasks/{_nodes(run)['work']['task']}/artifacts/")
    assert next(a for a in collected if a["name"] == "y")["metadata"]["failed_items"][-3:] == [
        7,
        8,
        9,
    ]


def test_a_fan_out_over_a_pickle_or_too_many_items_fails_naming_why_and_clones_nothing(cluster):
    queue = cluster.queue("bad-items")
    cluster.start_worker(queue)
    result = run_script(SCRIPTS / "fan_out_bad_items.py", cluster.server.sdk_env(), args=[queue])
    assert result.returncode == 0, result.stderr
    run = _ended(cluster, _run_id(result.stdout))
    nodes = _nodes(run)
    pickled, many = nodes["square_a_set"], nodes["square_too_many"]
    assert pickled["status"] == "failed" and pickled["task"] is None
    assert "artifact 'numbers' is pickle, not a JSON list" in pickled["message"]
    assert many["status"] == "failed" and many["task"] is None
    assert "10001 items; at most 10000 are allowed" in many["message"]
    for step in ("square_a_set", "square_too_many"):
        assert cluster.get(f"pipelines/{run['id']}/items/", step=step)["count"] == 0


def test_a_pickled_return_reaches_the_next_step_only_when_the_pipeline_opts_in(cluster):
    env = cluster.server.sdk_env()
    refused = run_script(SCRIPTS / "pickled_returns.py", env, timeout=120, args=["no"])
    assert refused.returncode == 0, refused.stderr
    run = cluster.get(f"pipelines/{_run_id(refused.stdout)}/")
    use = _nodes(run)["use"]
    assert run["status"] == "failed" and use["status"] == "failed"
    console = cluster.console_text(use["task"])
    assert "refusing to unpickle" in console and "PIPELINES_ALLOW_PICKLE=1" in console

    allowed = run_script(SCRIPTS / "pickled_returns.py", env, timeout=120, args=["opt-in"])
    run = cluster.get(f"pipelines/{_run_id(allowed.stdout)}/")
    assert run["status"] == "completed"
    assert "SORTED [1, 2, 3]" in cluster.console_text(_nodes(run)["use"]["task"])
