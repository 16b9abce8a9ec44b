"""`pipelines up` restarts the children that die under it (reliability.md R77-R79).

A real `pipelines up` (SQLite or PostgreSQL, its embedded Redis, its web server, server
worker and two step workers); a child is SIGKILLed by the pid `up` reports for it while a
pipeline step runs. `up` logs the exit, starts the child again after a pause, leaves the
others alone, and the pipeline completes. A child that keeps crashing is reported with the
end of its log and retried until what breaks it is fixed.
"""

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support import (
    REPO,
    descendants,
    free_port,
    fresh_database_url,
    pid_alive,
    start_process,
    up_env,
    wait_until,
)

pytestmark = [pytest.mark.e2e]
SCRIPTS = Path(__file__).parent / "scripts"
HANDSHAKE_FILES = ("go-a", "go-b")


class Up:
    """A `pipelines up` process and what its output says."""

    def __init__(self, folder: Path, **env):
        self.home, self.data_dir = folder / "home", folder / "data"
        self.home.mkdir(parents=True)
        self.data_dir.mkdir()
        database_url, self.drop_database = fresh_database_url(self.data_dir)
        # Leases long enough for a restarted web server; sweeps and republishing short
        # enough for a test; `env` may say otherwise.
        settings = {
            "TASK_LEASE_SECONDS": "15",
            "PIPELINES_LEASE_SECONDS": "15",
            "SWEEP_INTERVAL_SECONDS": "0.5",
            "QUEUED_REPUBLISH_SECONDS": "2",
            "PIPELINES_HEARTBEAT_SECONDS": "0.5",
            "PIPELINES_WORKER_HEARTBEAT_SECONDS": "1",
            "PIPELINES_SHUTDOWN_GRACE_SECONDS": "3",
            **env,
        }
        self.env = up_env(self.home, self.data_dir, database_url, **settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = start_process(
            "up",
            [sys.executable, "-m", "pipelines.launcher.cli", "up", "--port", str(self.port)],
            self.env,
            folder / "up.log",
            cwd=folder,
        )
        self.process.wait_for_log("Press Ctrl-C to stop.", timeout=120)
        self.key = re.search(r"API key:\s+(pk_\S+)", self.output()).group(1)
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {self.key}"

    def output(self) -> str:
        return self.process.log()

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).ok
        except requests.RequestException:
            return False

    def pids(self) -> dict[str, int]:
        """The latest pid `up` reported for each child."""
        found = re.findall(r"started (\S+) \(pid (\d+)\)", self.output())
        return {name: int(pid) for name, pid in found}

    def call(self, method: str, path: str, **body):
        response = self.api.request(method, f"{self.url}/api/v1/{path}", json=body, timeout=30)
        assert response.ok, (path, response.status_code, response.text)
        return response.json() if response.content else None

    def sdk_env(self) -> dict:
        return {
            **self.env,
            "PIPELINES_API_URL": self.url,
            "PIPELINES_API_KEY": self.key,
            "PIPELINES_CACHE_DIR": str(self.data_dir / "sdk-cache"),
        }

    def django(self, code: str) -> str:
        """Python run by `django shell` on up's own database (as an operator would)."""
        result = subprocess.run(
            [sys.executable, "-m", "django", "shell", "-c", code],
            env={**self.env, "DJANGO_SETTINGS_MODULE": "webapp.settings"},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def stop(self) -> None:
        """Ctrl-C, as the terminal sends it; everything `up` started must be gone."""
        children = descendants(self.process.pid)
        try:
            if self.process.process.poll() is None:
                os.kill(self.process.pid, signal.SIGINT)
                code = self.process.wait_exit(90, self.data_dir / "logs")
                assert code == 0, self.output()[-3000:]
            wait_until(
                lambda: not [pid for pid in children if pid_alive(pid)],
                timeout=15,
                message="every child of `up` to exit",
            )
        finally:
            self.process.stop()
            for pid in children:
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            self.drop_database()


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    running = Up(tmp_path_factory.mktemp("up"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def base(up) -> str:
    """The fault step registered as a base task, with a second attempt for a lost worker."""
    return _register(up)


def _register(up: Up) -> str:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "fault_step.py")],
        cwd=SCRIPTS,
        env=up.sdk_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    task_id = re.search(r"TASK_ID ([0-9a-f]{32})", result.stdout).group(1)
    up.call("patch", f"tasks/{task_id}/", max_attempts=2)
    return task_id


def _start_pipeline(up: Up, base: str, folder: Path) -> str:
    """a (waits for go-a) -> b (waits for go-b) -> c on `default`; returns the run id."""
    controller = up.call(
        "post", "tasks/", project_name="up-faults", name="supervised", type="controller"
    )
    steps = []
    for name, parents, mode in (("a", [], "wait"), ("b", ["a"], "wait"), ("c", ["b"], "record")):
        values = {"mode": mode, "handshake_dir": str(folder), "go_file": f"go-{name}"}
        steps.append(
            {
                "name": name,
                "base_task_id": base,
                "parents": parents,
                "parameter_override": {f"General/{k}": v for k, v in values.items()},
            }
        )
    run = up.call(
        "post", "pipelines/", controller=controller["id"], steps=steps, default_queue="default"
    )
    return run["id"]


def _nodes(up: Up, run_id: str) -> dict:
    return {node["name"]: node for node in up.call("get", f"pipelines/{run_id}/")["nodes"]}


def _wait_for_node(up: Up, run_id: str, name: str, status: str, timeout: float = 60) -> dict:
    return wait_until(
        lambda: (node := _nodes(up, run_id)[name])["status"] == status and node,
        timeout=timeout,
        interval=0.2,
        message=f"node {name} {status}",
    )


def _wait_for_restart(up: Up, name: str, old_pid: int) -> int:
    wait_until(
        lambda: up.pids()[name] != old_pid,
        timeout=60,
        interval=0.2,
        message=f"`up` to start {name} again",
    )
    return up.pids()[name]


def _worker_listed(up: Up, pid: int) -> bool:
    name = f"{socket.gethostname()}:{pid}"
    rows = up.call("get", "workers/")
    rows = rows["results"] if isinstance(rows, dict) else rows
    return any(row["name"] == name and row["alive"] for row in rows)


def _runs(folder: Path) -> list[str]:
    path = folder / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


def _run_task(up: Up, base: str, queue: str, folder: Path) -> dict:
    clone = up.call("post", f"tasks/{base}/clone/", name=f"after on {queue}")
    values = {"General": {"mode": "record", "handshake_dir": str(folder)}}
    up.call("put", f"tasks/{clone['id']}/hyperparameters/", values=values)
    up.call("post", f"tasks/{clone['id']}/enqueue/", queue=queue)
    return wait_until(
        lambda: (task := up.call("get", f"tasks/{clone['id']}/"))["status"]
        in ("completed", "failed")
        and task,
        timeout=60,
        interval=0.2,
        message=f"a task on {queue} to end",
    )


@pytest.mark.parametrize(
    "child", ["worker-default", "worker-services", "server", "server-worker", "redis"]
)
def test_a_child_killed_while_a_step_runs_is_restarted_and_the_pipeline_completes(
    up, base, tmp_path, child
):
    run_id = _start_pipeline(up, base, tmp_path)
    step_a = _wait_for_node(up, run_id, "a", "running")["task"]
    wait_until(lambda: _runs(tmp_path), timeout=30, message="step a to start")
    before = up.pids()
    # when the child dies at once (SIGKILL: no clean-up), by the pid up reported for it
    os.kill(before[child], signal.SIGKILL)
    # then up says so and starts it again, and leaves every other child running
    new_pid = _wait_for_restart(up, child, before[child])
    wait_until(up.healthy, timeout=60, message="the web server to answer")
    assert re.search(rf"{child} \(pid {before[child]}\) exited with signal 9", up.output())
    assert (up.data_dir / "logs" / "up.log").read_text().count(f"started {child} (pid") >= 2
    assert pid_alive(new_pid)
    others = {name: pid for name, pid in before.items() if name != child}
    assert {name: up.pids()[name] for name in others} == others
    assert all(pid_alive(pid) for pid in others.values())
    # and the pipeline completes, each step once; only a step whose worker was killed under
    # it runs again, as its second attempt
    (tmp_path / "go-a").touch()
    (tmp_path / "go-b").touch()
    wait_until(
        lambda: up.call("get", f"pipelines/{run_id}/")["status"] != "running",
        timeout=120,
        interval=0.2,
        message="the pipeline to end",
    )
    nodes = _nodes(up, run_id)
    assert up.call("get", f"pipelines/{run_id}/")["status"] == "completed", nodes
    ran = [line.split()[0] for line in _runs(tmp_path)]
    expected = {nodes[n]["task"]: 1 for n in "abc"}
    if child == "worker-default":
        expected[step_a] = 2
        assert up.call("get", f"tasks/{step_a}/")["attempt"] == 2
        attempts = [line.split()[1] for line in _runs(tmp_path) if line.startswith(step_a)]
        assert attempts == ["attempt=1", "attempt=2"]
    assert {task: ran.count(task) for task in expected} == expected
    assert len(ran) == sum(expected.values())
    # a restarted step worker takes work again
    if child.startswith("worker-"):
        queue = child.removeprefix("worker-")
        wait_until(lambda: _worker_listed(up, new_pid), timeout=30, message="the new worker")
        task = _run_task(up, base, queue, tmp_path)
        assert (task["status"], task["worker"]) == (
            "completed",
            f"{socket.gethostname()}:{new_pid}",
        )


def test_a_child_that_keeps_crashing_is_reported_and_comes_back_once_fixed(tmp_path):
    up = Up(tmp_path / "crashing")
    try:
        before = up.pids()
        # when the step workers' key is revoked, a restarted worker exits at once, each time
        up.django(
            "from django.utils import timezone; from webapp.core.models import ApiKey; "
            "ApiKey.objects.filter(kind='worker').update(revoked=timezone.now())"
        )
        os.kill(before["worker-default"], signal.SIGKILL)
        # then up reports the crash loop, with the end of the worker's own log
        up.process.wait_for_log("worker-default is crash-looping", timeout=90)
        report = up.output().split("worker-default is crash-looping", 1)[1]
        assert "refuses this key" in report
        assert up.process.process.poll() is None
        others = {name: pid for name, pid in before.items() if name != "worker-default"}
        assert all(pid_alive(pid) and up.pids()[name] == pid for name, pid in others.items())
        # and keeps retrying: once the key works again, the worker comes back and runs tasks
        up.django(
            "from webapp.core.models import ApiKey; "
            "ApiKey.objects.filter(kind='worker').update(revoked=None)"
        )
        reported = len(up.output())

        def back() -> int | None:
            if "started worker-default" not in up.output()[reported:]:
                return None
            pid = up.pids()["worker-default"]
            return pid if pid_alive(pid) and _worker_listed(up, pid) else None

        pid = wait_until(back, timeout=90, interval=0.5, message="the worker to come back")
        script = {"entry_point": "after.py", "code": "print('ran after the fix')\n"}
        task = up.call("post", "tasks/", project_name="up-faults", name="after", script=script)
        up.call("post", f"tasks/{task['id']}/enqueue/", queue="default")
        done = wait_until(
            lambda: (row := up.call("get", f"tasks/{task['id']}/"))["status"]
            in ("completed", "failed")
            and row,
            timeout=60,
            interval=0.2,
        )
        assert (done["status"], done["worker"]) == ("completed", f"{socket.gethostname()}:{pid}")
    finally:
        up.stop()


def test_stopping_up_hands_a_running_step_back_before_the_server_stops(tmp_path):
    up = Up(tmp_path / "stopping", PIPELINES_SHUTDOWN_GRACE_SECONDS="600")
    try:
        base = _register(up)
        clone = up.call("post", f"tasks/{base}/clone/", name="running when up stops")
        values = {"General": {"mode": "wait", "handshake_dir": str(tmp_path)}}
        up.call("put", f"tasks/{clone['id']}/hyperparameters/", values=values)
        up.call("post", f"tasks/{clone['id']}/enqueue/", queue="default")
        wait_until(lambda: _runs(tmp_path), timeout=60, message="the step to start")
        worker_log = up.data_dir / "logs" / "worker-default.log"
        # when up gets Ctrl-C: the step workers stop first, with a 600 s grace
        os.kill(up.process.pid, signal.SIGINT)
        wait_until(
            lambda: "taking no new task" in worker_log.read_text(),
            timeout=30,
            message="the step worker to start its warm shutdown",
        )
        # and a second Ctrl-C: the running step is handed back at once
        os.kill(up.process.pid, signal.SIGINT)
        assert up.process.wait_exit(90, up.data_dir / "logs") == 0, up.output()[-3000:]
        assert "running steps are handed back" in up.output()
        # then the server was still there to take it back: queued, its attempt not spent
        row = (
            up.django(
                "from webapp.core.models import Task; "
                f"t = Task.objects.get(pk={clone['id']!r}); "
                "print(t.status, t.attempt, t.status_reason)"
            )
            .strip()
            .splitlines()[-1]
        )
        assert row.split()[:2] == ["queued", "1"], row
        assert "told to stop at once" in row
    finally:
        up.stop()
