"""Tasks run on real step workers: a broker, a server, the server worker, worker processes,
and step subprocesses, all talking as they do in production."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support import (
    descendants,
    free_port,
    fresh_database_url,
    pid_alive,
    start_process,
    up_env,
    wait_until,
)
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
SCRIPTS = Path(__file__).parent / "scripts"


def _task_id(output: str) -> str:
    return re.search(r"TASK_ID ([0-9a-f]{32})", output).group(1)


@pytest.fixture(scope="module")
def bases(cluster) -> dict[str, str]:
    """The base tasks, registered by running each script once as a user would."""
    env = cluster.server.sdk_env()
    running = {
        name: subprocess.Popen(
            [sys.executable, str(SCRIPTS / f"exec_{name}.py")],
            cwd=SCRIPTS,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("step", "fail", "wait")
    }
    ids = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        ids[name] = _task_id(out)
    return ids


@pytest.fixture(scope="module")
def default_queue(cluster) -> str:
    """A queue with one step worker that several tests share (each waits for its task)."""
    queue = cluster.queue("default")
    cluster.start_worker(queue)
    return queue


@pytest.fixture
def sdk(cluster, tmp_path, monkeypatch):
    """The SDK in this process, logged in as the admin user."""
    from pipelines.client import Client, set_client
    from pipelines.config import ClientConfig

    monkeypatch.setenv("PIPELINES_CACHE_DIR", str(tmp_path / "sdk-cache"))
    set_client(Client(ClientConfig(cluster.server.url, cluster.server.api_key)))
    yield
    set_client(None)


@pytest.fixture(autouse=True)
def release_steps(tmp_path):
    """A failing test must not leave a step waiting on a worker that later tests share."""
    yield
    (tmp_path / "go").touch()


def _launch(cluster, base_id: str, queue: str, parameters: dict, **fields) -> str:
    """Clone a base task, override parameters (and fields), enqueue it; returns the clone id."""
    clone = cluster.post(f"tasks/{base_id}/clone/", {"name": "run"})
    cluster.server.api().put(
        f"{cluster.server.url}/api/v1/tasks/{clone['id']}/hyperparameters/",
        json={"values": {"General": {k: str(v) for k, v in parameters.items()}}},
    ).raise_for_status()
    if fields:
        cluster.patch(f"tasks/{clone['id']}/", fields)
    cluster.post(f"tasks/{clone['id']}/enqueue/", {"queue": queue})
    return clone["id"]


def _runs(folder: Path) -> list[str]:
    path = folder / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


def _step_pid(folder: Path, index: int = 0) -> int:
    lines = wait_until(lambda: len(_runs(folder)) > index and _runs(folder), timeout=30)
    return int(lines[index].split("pid=")[1].split()[0])


def test_a_cloned_task_runs_on_a_worker_with_live_console_artifact_and_typed_override(
    cluster, bases, default_queue, sdk, tmp_path
):
    from pipelines import Task

    # given a registered base task and a clone of it with an overridden float parameter
    base_before = cluster.task(bases["step"])
    clone = Task.clone(Task.get_task(task_id=bases["step"]), name="exec step clone")
    clone.set_parameters({"General/learning_rate": "0.25", "General/handshake_dir": str(tmp_path)})
    # when the clone is enqueued
    Task.enqueue(clone, queue_name=default_queue)
    # then its console shows up while it is still running
    wait_until(
        lambda: "STEP STARTED" in cluster.console_text(clone.id), timeout=30, message="console"
    )
    assert cluster.task(clone.id)["status"] == "in_progress"
    # and the script saw the override with the base's type
    assert "STEP STARTED lr=0.25 type=float" in cluster.console_text(clone.id)
    (tmp_path / "go").touch()
    task = cluster.wait_for_status(clone.id, "completed", "failed")
    assert task["status"] == "completed", task["status_reason"]
    assert "STEP DONE" in cluster.console_text(clone.id)
    artifact = Task.get_task(task_id=clone.id).artifacts["result"]
    assert artifact.state == "ready"
    assert artifact.get() == {"learning_rate": 0.25, "label": "base"}
    # the clone points at its base, which is still the same draft
    assert task["parent"] == bases["step"]
    base_after = cluster.task(bases["step"])
    assert base_after["status"] == "created"
    for field in ("hyperparameters", "script", "attempt", "last_update"):
        assert base_after[field] == base_before[field], field
    # and the worker left no working directory behind
    assert not list((cluster.data_dir / "work").iterdir())


def test_a_failing_script_ends_failed_with_its_exit_code_and_traceback(
    cluster, bases, default_queue
):
    task_id = _launch(cluster, bases["fail"], default_queue, {})
    task = cluster.wait_for_status(task_id, "completed", "failed")
    assert task["status"] == "failed"
    assert task["status_reason"] == "exit code 1"
    assert "ValueError: the data file is corrupt" in task["status_message"]
    console = cluster.console(task_id)
    stderr = "\n".join(line["text"] for line in console if line["stream"] == "stderr")
    assert "Traceback (most recent call last)" in stderr
    assert "ValueError: the data file is corrupt" in stderr
    assert any(line["text"] == "about to fail" and line["stream"] == "stdout" for line in console)


def test_a_killed_worker_loses_its_step_and_the_retry_runs_once_elsewhere(cluster, bases, tmp_path):
    queue = cluster.queue("crash")
    worker = cluster.start_worker(queue)
    task_id = _launch(
        cluster,
        bases["wait"],
        queue,
        {"handshake_dir": tmp_path, "spawn_child": True},
        max_attempts=2,
    )
    first_pid = _step_pid(tmp_path)
    wait_until(lambda: (tmp_path / "child.pid").exists(), timeout=10)
    child_pid = int((tmp_path / "child.pid").read_text())
    # when the worker dies at once with everything in its process group
    worker.kill()
    # then neither its step nor the step's own child outlives it (they run in a session of
    # their own, out of reach of the signal that killed the worker)
    wait_until(lambda: not pid_alive(first_pid), timeout=5, message="the orphaned step to die")
    wait_until(lambda: not pid_alive(child_pid), timeout=5, message="the step's child to die")
    # and the server takes the task back within the lease and a sweep: attempt 2 is queued
    task = cluster.wait_for_status(task_id, "queued", timeout=15)
    assert task["attempt"] == 2
    assert "stopped heartbeating" in task["status_reason"]
    # when another worker comes up, it runs the retry exactly once
    cluster.start_worker(queue)
    _step_pid(tmp_path, index=1)
    (tmp_path / "go").touch()
    assert cluster.wait_for_status(task_id, "completed", "failed")["status"] == "completed"
    assert [line.rsplit(" ", 1)[1] for line in _runs(tmp_path)] == ["overlap=0", "overlap=0"]
    assert [line.split()[0] for line in _runs(tmp_path)] == ["attempt=1", "attempt=2"]


def test_a_second_delivery_of_the_same_attempt_starts_nothing(
    cluster, bases, default_queue, tmp_path, monkeypatch
):
    from celery import Celery

    # Celery reads CELERY_BROKER_URL before its own setting (the unit tests set memory://).
    monkeypatch.setenv("CELERY_BROKER_URL", cluster.broker_url)
    task_id = _launch(cluster, bases["wait"], default_queue, {"handshake_dir": tmp_path})
    _step_pid(tmp_path)
    # the broker delivers the same (task, attempt) again while the first run is going
    publisher = Celery("duplicate", broker=cluster.broker_url, set_as_current=False)
    publisher.conf.update(task_serializer="json", accept_content=["json"])
    with publisher.connection_for_write() as connection:
        publisher.send_task(
            "pipelines.run_task",
            args=[task_id, 1],
            queue=default_queue,
            routing_key=default_queue,
            connection=connection,
        )
    (tmp_path / "go").touch()
    assert cluster.wait_for_status(task_id, "completed", "failed")["status"] == "completed"
    worker = next(p for p in cluster.processes if default_queue in " ".join(p.process.args))
    worker.wait_for_log(f"task {task_id} attempt 1 is not claimable")
    assert len(_runs(tmp_path)) == 1


def test_a_step_past_its_time_limit_is_killed_with_its_children(
    cluster, bases, default_queue, tmp_path
):
    task_id = _launch(
        cluster,
        bases["wait"],
        default_queue,
        {"handshake_dir": tmp_path, "spawn_child": True},
        time_limit=2,
    )
    step_pid = _step_pid(tmp_path)
    wait_until(lambda: (tmp_path / "child.pid").exists(), timeout=10)
    child_pid = int((tmp_path / "child.pid").read_text())
    assert pid_alive(child_pid)
    task = cluster.wait_for_status(task_id, "completed", "failed", timeout=30)
    assert task["status"] == "failed"
    assert "time limit exceeded" in task["status_reason"]
    # the child ignored SIGTERM: the group's SIGKILL after the grace period took it down
    assert not pid_alive(step_pid)
    assert not pid_alive(child_pid)


def test_aborting_a_running_task_stops_it_and_kills_the_step(
    cluster, bases, default_queue, tmp_path
):
    task_id = _launch(cluster, bases["wait"], default_queue, {"handshake_dir": tmp_path})
    step_pid = _step_pid(tmp_path)
    cluster.post(f"tasks/{task_id}/abort/")
    wait_until(lambda: not pid_alive(step_pid), timeout=10, message="the step to be killed")
    task = cluster.task(task_id)
    assert task["status"] == "stopped"
    wait_until(
        lambda: "the server says stop" in cluster.console_text(task_id),
        timeout=10,
        message="the worker to say why it stopped the step",
    )
    # the worker reported nothing over the abort and is no longer shown running it
    assert cluster.task(task_id)["status"] == "stopped"
    assert task_id not in {row["current_task"] for row in cluster.workers()}


def test_aborting_a_queued_task_means_a_later_worker_runs_nothing(cluster, bases, tmp_path):
    queue = cluster.queue("idle")
    task_id = _launch(cluster, bases["wait"], queue, {"handshake_dir": tmp_path})
    assert cluster.queues_listed()[queue]["length"] == 1
    assert cluster.post(f"tasks/{task_id}/abort/")["status"] == "stopped"
    assert cluster.queues_listed()[queue]["length"] == 0
    worker = cluster.start_worker(queue)
    worker.wait_for_log(f"task {task_id} attempt 1 is not claimable")
    assert _runs(tmp_path) == []
    assert cluster.task(task_id)["status"] == "stopped"
    # a worker that stops cleanly takes itself off the list
    worker.stop()
    assert worker.name not in {row["name"] for row in cluster.workers()}


def test_workers_and_queue_lengths_are_listed(cluster, bases, default_queue):
    listed = {row["name"]: row for row in cluster.workers()}
    mine = [row for row in listed.values() if row["queues"] == [default_queue]]
    assert mine and mine[0]["alive"] and mine[0]["pid"]
    waiting = cluster.queue("waiting")
    first = _launch(cluster, bases["wait"], waiting, {})
    second = _launch(cluster, bases["wait"], waiting, {})
    queues = cluster.queues_listed()
    assert queues[waiting]["length"] == 2
    assert queues[waiting]["workers"] == []
    assert queues[default_queue]["workers"] == [mine[0]["name"]]
    for task_id in (first, second):
        cluster.post(f"tasks/{task_id}/dequeue/")
    assert cluster.queues_listed()[waiting]["length"] == 0


def test_a_worker_cut_off_from_the_server_kills_its_step_within_the_lease(cluster, bases, tmp_path):
    queue = cluster.queue("fenced")
    proxy = TcpProxy(cluster.server.port)
    try:
        cluster.start_worker(queue, PIPELINES_API_URL=proxy.url)
        task_id = _launch(cluster, bases["wait"], queue, {"handshake_dir": tmp_path})
        step_pid = _step_pid(tmp_path)
        # when the worker can no longer reach the server
        proxy.cut()
        # then it kills the step before the lease runs out on the server (2 s here)
        wait_until(lambda: not pid_alive(step_pid), timeout=5, message="the fenced step to die")
        # and the server, hearing nothing, fails the task
        task = cluster.wait_for_status(task_id, "failed", timeout=15)
        assert "stopped heartbeating" in task["status_reason"]
    finally:
        proxy.restore()


# ---------------------------------------------------------------- pipelines up


def test_pipelines_up_runs_a_task_and_ctrl_c_stops_everything(tmp_path):
    home = tmp_path / "home"
    data_dir = tmp_path / "data"
    home.mkdir()
    data_dir.mkdir()
    database_url, drop_database = fresh_database_url(data_dir)
    env = up_env(home, data_dir, database_url)
    port = free_port()
    up = start_process(
        "up",
        [sys.executable, "-m", "pipelines.launcher.cli", "up", "--port", str(port)],
        env,
        tmp_path / "up.log",
        cwd=tmp_path,
    )
    children: list[int] = []
    try:
        up.wait_for_log("Press Ctrl-C to stop.", timeout=90)
        output = up.log()
        assert f"http://127.0.0.1:{port}/" in output
        assert re.search(r"login:\s+admin / \S+", output)
        key = re.search(r"API key:\s+(pk_\S+)", output).group(1)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok
        assert (data_dir / "credentials.json").stat().st_mode & 0o777 == 0o600
        config = home / ".config" / "pipelines" / "config.json"
        assert key in config.read_text()

        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"
        base = f"http://127.0.0.1:{port}/api/v1"
        script = {"entry_point": "tiny.py", "code": "print('tiny step ran')\n"}
        task = api.post(
            f"{base}/tasks/", json={"project_name": "smoke", "name": "tiny", "script": script}
        ).json()
        api.post(f"{base}/tasks/{task['id']}/enqueue/", json={"queue": "default"})

        def finished():
            row = api.get(f"{base}/tasks/{task['id']}/").json()
            return row if row["status"] in ("completed", "failed") else None

        assert wait_until(finished, timeout=60)["status"] == "completed"
        console = api.get(f"{base}/tasks/{task['id']}/console/").json()
        assert "tiny step ran" in [line["text"] for line in console]

        children = descendants(up.pid)
        assert len(children) >= 5  # redis, server, server worker, two step workers
        # when Ctrl-C reaches `up` (the terminal signals its foreground process group)
        up.signal_group(signal.SIGINT)
        assert up.wait_exit(60, data_dir / "logs") == 0, up.log()[-3000:]
        wait_until(
            lambda: not [pid for pid in children if pid_alive(pid)],
            timeout=10,
            message="every child of `up` to exit",
        )
        assert "stopped." in up.log()
    finally:
        up.stop()
        for pid in children:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        drop_database()
