"""Runs that a user's own process drives, when that process dies (reliability.md R42).

A local `Task.init` run and a pipeline driven by `start_locally()` ping the server; the
cluster's lease for them is 2 s. A process that dies is noticed by the reaper; one that
lives on is never reaped, however long it runs.
"""

import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.support import start_process, wait_until

pytestmark = pytest.mark.e2e
SCRIPTS = Path(__file__).parent / "scripts"

LOCAL_RUN = """
import sys, time
from pipelines import Task

task = Task.init(project_name="e2e-local", task_name=sys.argv[1])
print("TASK_ID", task.id, flush=True)
time.sleep(float(sys.argv[2]))
print("DONE", flush=True)
"""


# created after each test (conftest.release_steps), so no step is left waiting
HANDSHAKE_FILES = ("go", "go-a", "go-b")


def _task_id(process) -> str:
    process.wait_for_log("TASK_ID ", timeout=60)
    return process.log().split("TASK_ID ")[1].split()[0]


def test_a_killed_local_run_is_failed_and_a_living_one_is_not(cluster, tmp_path):
    script = tmp_path / "local_run.py"
    script.write_text(LOCAL_RUN)
    env = cluster.server.sdk_env()
    # given two local runs: one that will be killed, one that outlives its lease 3 times
    doomed = start_process(
        "doomed", [sys.executable, str(script), "doomed", "120"], env, tmp_path / "doomed.log"
    )
    living = start_process(
        "living", [sys.executable, str(script), "living", "6"], env, tmp_path / "living.log"
    )
    doomed_id, living_id = _task_id(doomed), _task_id(living)
    wait_until(lambda: cluster.task(doomed_id)["last_heartbeat"], timeout=10, message="a ping")
    # when the first is killed (SIGKILL: no exit hook runs)
    doomed.kill()
    # then the reaper fails it, saying why
    task = cluster.wait_for_status(doomed_id, "failed", timeout=15)
    assert "stopped pinging" in task["status_reason"], task["status_reason"]
    # and the other, still pinging, ends as it says
    assert living.process.wait(30) == 0, living.log()
    assert cluster.task(living_id)["status"] == "completed"


def test_a_start_locally_controller_that_dies_stops_its_run(cluster, base, tmp_path):
    queue = cluster.queue("local-steps")
    cluster.start_worker(queue)
    controller = start_process(
        "controller",
        [sys.executable, str(SCRIPTS / "fault_controller.py"), base, queue, str(tmp_path), "local"],
        cluster.server.sdk_env(),
        tmp_path / "controller.log",
        cwd=SCRIPTS,
    )
    controller.wait_for_log("CONTROLLER ", timeout=60)
    controller_id = controller.log().split("CONTROLLER ")[1].split()[0]
    run = wait_until(
        lambda: _run_with_running_step(cluster, controller_id), timeout=30, message="step a"
    )
    step_a = next(node["task"] for node in run["nodes"] if node["name"] == "a")
    # when the process driving the run is killed
    controller.kill()
    # then the controller is failed within its lease and the run stopped with what it started
    task = cluster.wait_for_status(controller_id, "failed", timeout=15)
    assert "stopped pinging" in task["status_reason"]
    run = wait_until(
        lambda: _ended(cluster.get(f"pipelines/{run['id']}/")), timeout=15, message="run end"
    )
    assert run["status"] == "stopped"
    nodes = {node["name"]: node["status"] for node in run["nodes"]}
    assert nodes == {"a": "aborted", "b": "skipped", "c": "skipped"}
    assert cluster.wait_for_status(step_a, "stopped")["status"] == "stopped"


def test_a_server_driven_run_outlives_the_script_that_started_it(cluster, base, tmp_path):
    queue = cluster.queue("detached")
    cluster.start_worker(queue)
    # given a controller script that calls start() and exits at once
    controller = start_process(
        "controller",
        [
            sys.executable,
            str(SCRIPTS / "fault_controller.py"),
            base,
            queue,
            str(tmp_path),
            "detach",
        ],
        cluster.server.sdk_env(),
        tmp_path / "controller.log",
        cwd=SCRIPTS,
    )
    assert controller.process.wait(60) == 0, controller.log()
    controller_id = controller.log().split("CONTROLLER ")[1].split()[0]
    # when its steps finish well after the local-run lease has passed
    run = wait_until(
        lambda: _run_with_running_step(cluster, controller_id), timeout=30, message="step a"
    )
    task = cluster.task(controller_id)
    last_sign = datetime.fromisoformat(task["last_heartbeat"] or task["started"]).timestamp()
    # (the lease, 2 s, and two sweeps, 0.5 s each, have passed since its last sign of life)
    wait_until(lambda: time.time() - last_sign > 3.5, timeout=10, message="the lease to pass")
    assert cluster.task(controller_id)["status"] == "in_progress"
    (tmp_path / "go-a").touch()
    (tmp_path / "go-b").touch()
    # then the run completes: no process has to stay for a run the server drives
    run = wait_until(
        lambda: _ended(cluster.get(f"pipelines/{run['id']}/")), timeout=30, message="run end"
    )
    assert run["status"] == "completed"
    assert cluster.task(controller_id)["status"] == "completed"


def _run_with_running_step(cluster, controller_id: str) -> dict | None:
    runs = cluster.get("pipelines/", page_size=1000)["results"]
    summary = next((r for r in runs if r["controller"] == controller_id), None)
    if summary is None:
        return None
    run = cluster.get(f"pipelines/{summary['id']}/")
    return run if any(node["status"] == "running" for node in run["nodes"]) else None


def _ended(run: dict) -> dict | None:
    return run if run["status"] != "running" else None
