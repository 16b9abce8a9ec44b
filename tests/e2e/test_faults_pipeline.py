"""Pipelines whose processes fail under them (reliability.md R19, R20, R23).

The server drives a pipeline, so no client process has to survive for it to finish, and a
step that dies ends the run instead of leaving it running for ever.
"""

import hashlib
import sys
from pathlib import Path

import pytest

from tests.support import start_process, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
SCRIPTS = Path(__file__).parent / "scripts"


# created after each test (conftest.release_steps), so no step is left waiting
HANDSHAKE_FILES = ("go", "go-a", "go-b")


def _run_of(cluster, controller_id: str) -> dict | None:
    runs = cluster.get("pipelines/", page_size=1000)["results"]
    run = next((r for r in runs if r["controller"] == controller_id), None)
    return run and cluster.get(f"pipelines/{run['id']}/")


def _nodes(run: dict) -> dict:
    return {node["name"]: node for node in run["nodes"]}


def _wait_for_nodes(cluster, controller_id: str, timeout: float = 30, **statuses) -> dict:
    """Wait until the run of `controller_id` has nodes in the given statuses."""

    def reached():
        run = _run_of(cluster, controller_id)
        if run is None:
            return None
        nodes = _nodes(run)
        return run if all(nodes[n]["status"] == s for n, s in statuses.items()) else None

    return wait_until(reached, timeout=timeout, interval=0.1, message=f"nodes {statuses}")


def _wait_for_run_end(cluster, controller_id: str, timeout: float = 30) -> dict:
    def ended():
        run = _run_of(cluster, controller_id)
        return run if run and run["status"] != "running" else None

    return wait_until(ended, timeout=timeout, interval=0.1, message="the run to end")


def _runs(folder: Path) -> list[str]:
    path = folder / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


def _controller(cluster, base: str, folder: Path, queue: str, *extra: str):
    """The controller script as a process of its own (its own session: killed alone)."""
    return start_process(
        "controller",
        [sys.executable, str(SCRIPTS / "fault_controller.py"), base, queue, str(folder), *extra],
        cluster.server.sdk_env(),
        folder / "controller.log",
        cwd=SCRIPTS,
    )


def _controller_id(process) -> str:
    process.wait_for_log("CONTROLLER ", timeout=60)
    return process.log().split("CONTROLLER ")[1].split()[0]


def test_a_killed_controller_script_relaunches_nothing_and_the_run_completes(
    cluster, base, tmp_path
):
    queue = cluster.queue("pipeline")
    cluster.start_worker(queue)
    controller = _controller(cluster, base, tmp_path, queue, "server")
    controller_id = _controller_id(controller)
    _wait_for_nodes(cluster, controller_id, a="running")
    (tmp_path / "go-a").touch()
    _wait_for_nodes(cluster, controller_id, a="completed", b="running")
    # when the controller script dies while step b runs (a laptop closing its lid)
    controller.kill()
    (tmp_path / "go-b").touch()
    # then the server finishes the run: c is launched once, nothing is launched again
    run = _wait_for_run_end(cluster, controller_id)
    assert run["status"] == "completed"
    nodes = _nodes(run)
    assert {n: (nodes[n]["status"], nodes[n]["attempts"]) for n in nodes} == {
        n: ("completed", 1) for n in "abc"
    }
    assert sorted(line.split()[0] for line in _runs(tmp_path)) == sorted(
        nodes[n]["task"] for n in "abc"
    )
    assert cluster.task(controller_id)["status"] == "completed"


def _start_pipeline(cluster, steps: list[dict], queue: str) -> str:
    """A pipeline handed to the server through the REST API; returns its controller id."""
    controller = cluster.post(
        "tasks/", {"project_name": "e2e-faults", "name": "api pipeline", "type": "controller"}
    )
    cluster.post(
        "pipelines/", {"controller": controller["id"], "steps": steps, "default_queue": queue}
    )
    return controller["id"]


def _step(name: str, base: str, folder: Path, mode: str, parents=(), **override) -> dict:
    values = {"mode": mode, "handshake_dir": str(folder), "go_file": f"go-{name}", **override}
    return {
        "name": name,
        "base_task_id": base,
        "parents": list(parents),
        "parameter_override": {f"General/{k}": v for k, v in values.items()},
    }


def test_a_step_whose_worker_dies_fails_the_pipeline_promptly(cluster, base, tmp_path):
    queue = cluster.queue("doomed")
    worker = cluster.start_worker(queue)
    controller_id = _start_pipeline(
        cluster,
        [_step("a", base, tmp_path, "wait"), _step("b", base, tmp_path, "record", ["a"])],
        queue,
    )
    run = _wait_for_nodes(cluster, controller_id, a="running")
    assert cluster.task(_nodes(run)["a"]["task"])["max_attempts"] == 1
    # when the worker running step a dies with its step
    worker.kill()
    # then within the lease and a sweep the step fails, and with it the run: never left running
    run = _wait_for_run_end(cluster, controller_id, timeout=15)
    nodes = _nodes(run)
    assert run["status"] == "failed"
    assert nodes["a"]["status"] == "failed" and "stopped heartbeating" in nodes["a"]["message"]
    assert nodes["b"]["status"] == "skipped" and nodes["b"]["task"] is None
    assert cluster.task(controller_id)["status"] == "failed"


def test_a_run_driven_by_a_controller_whose_worker_dies_is_stopped_not_left_running(
    cluster, base, tmp_path
):
    queue = cluster.queue("steps")
    services = cluster.queue("services")
    cluster.start_worker(queue)
    services_worker = cluster.start_worker(services)
    # with a callback, start() enqueues the controller itself; a services worker drives it
    registered = _controller(cluster, base, tmp_path, queue, "callbacks", services)
    assert registered.process.wait(60) == 0, registered.log()
    controller_id = _controller_id(registered)
    run = _wait_for_nodes(cluster, controller_id, a="running")
    step_a = _nodes(run)["a"]["task"]
    # when the worker running the controller dies
    services_worker.kill()
    # then the reaper fails the controller, and the run is stopped with what it started
    run = _wait_for_run_end(cluster, controller_id, timeout=20)
    assert run["status"] == "stopped"
    assert cluster.task(controller_id)["status"] == "failed"
    nodes = _nodes(run)
    assert nodes["a"]["status"] == "aborted" and nodes["b"]["status"] == "skipped"
    assert cluster.wait_for_status(step_a, "stopped")["status"] == "stopped"


def test_an_interrupted_upload_leaves_the_artifact_pending_and_unusable(cluster, base, tmp_path):
    queue = cluster.queue("uploads")
    cluster.start_worker(queue)
    steps = [
        _step("produce", base, tmp_path, "partial_upload"),
        {
            "name": "consume",
            "base_task_id": base,
            "parents": ["produce"],
            "parameter_override": {"General/handshake_dir": "${produce.artifacts.big.url}"},
        },
    ]
    controller_id = _start_pipeline(cluster, steps, queue)
    run = _wait_for_run_end(cluster, controller_id)
    nodes = _nodes(run)
    producer = nodes["produce"]["task"]
    # the step that sent 5 MB of its 20 MB and hung up ended normally ...
    assert nodes["produce"]["status"] == "completed"
    (artifact,) = cluster.get(f"tasks/{producer}/artifacts/")
    # ... but its artifact stays pending, with nothing stored under its key
    assert artifact["name"] == "big" and artifact["state"] == "pending"
    stored = cluster.server.data_dir / "artifacts"
    assert not [p for p in stored.rglob("*") if artifact["id"] in str(p) and p.is_file()]
    api = cluster.server.api()
    download = api.get(f"{cluster.server.url}/api/v1/artifacts/{artifact['id']}/download/")
    assert download.status_code == 409
    # and the step referring to it is refused before anything is cloned
    assert nodes["consume"]["status"] == "failed" and nodes["consume"]["task"] is None
    assert "artifact 'big' is not ready" in nodes["consume"]["message"]
    assert run["status"] == "failed"
    # a complete upload of the declared bytes still succeeds afterwards
    content = b"z" * (20 * 1024 * 1024)
    assert artifact["sha256"] == hashlib.sha256(content).hexdigest()
    response = api.put(
        f"{cluster.server.url}/api/v1/artifacts/{artifact['id']}/upload/",
        files={"file": ("big.bin", content)},
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "ready"


def test_an_ended_run_runs_again_with_new_step_tasks_on_real_workers(cluster, base, tmp_path):
    queue = cluster.queue("again")
    cluster.start_worker(queue)
    steps = [
        _step("a", base, tmp_path, "record"),
        _step("b", base, tmp_path, "record", ["a"]),
    ]
    controller_id = _start_pipeline(cluster, steps, queue)
    first = _wait_for_run_end(cluster, controller_id)
    assert first["status"] == "completed"
    # when it is run again through the API
    again = cluster.post(f"pipelines/{first['id']}/rerun/")
    # then a new run under a new controller completes, with a fresh task for every step
    assert again["id"] != first["id"] and again["controller"] != controller_id
    second = _wait_for_run_end(cluster, again["controller"])
    assert second["status"] == "completed"
    old_tasks = {node["task"] for node in first["nodes"]}
    new_tasks = {node["task"] for node in second["nodes"]}
    assert len(new_tasks) == 2 and not old_tasks & new_tasks
    assert cluster.task(again["controller"])["parent"] == controller_id
    assert len(_runs(tmp_path)) == 4
    # and a run that is still going is refused, saying so
    waiting = _start_pipeline(cluster, [_step("w", base, tmp_path, "wait")], queue)
    running = _wait_for_nodes(cluster, waiting, w="running")
    api = cluster.server.api()
    refused = api.post(f"{cluster.server.url}/api/v1/pipelines/{running['id']}/rerun/")
    assert refused.status_code == 409 and "still running" in refused.json()["detail"]
    (tmp_path / "go-w").touch()
