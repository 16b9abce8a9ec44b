"""Step workers that are asked to stop, and workers that vanish (reliability.md R70-R73).

A worker told to stop (SIGTERM, as a service manager or `pipelines up` sends it) takes no new
task, lets its running step finish within PIPELINES_SHUTDOWN_GRACE_SECONDS, and otherwise
hands the attempt back: the server queues it again without counting it. A worker that dies
without unregistering leaves the workers list after WORKER_FORGET_SECONDS.
"""

import re
import signal
from pathlib import Path

import pytest
import requests

from tests.support import pid_alive, start_cluster, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.execution]

# created after each test (conftest.release_steps), so no step is left waiting
HANDSHAKE_FILES = ("go",)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A cluster whose sweep forgets workers silent for 3 s."""
    running = start_cluster(tmp_path_factory.mktemp("workers-cluster"), WORKER_FORGET_SECONDS="3")
    yield running
    running.stop()


def _runs(folder: Path) -> list[str]:
    path = folder / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


def _step_pid(folder: Path, count: int = 1) -> int:
    wait_until(lambda: len(_runs(folder)) >= count, timeout=30, message=f"{count} step start(s)")
    return int(re.search(r"pid=(\d+)", _runs(folder)[count - 1]).group(1))


def _listed(cluster, name: str) -> bool:
    return name in {row["name"] for row in cluster.workers()}


def test_a_worker_asked_to_stop_lets_its_step_finish_takes_nothing_new_and_exits(
    cluster, base, tmp_path
):
    queue = cluster.queue("warm")
    worker = cluster.start_worker(queue, PIPELINES_SHUTDOWN_GRACE_SECONDS="60")
    task_id = cluster.launch(base, queue, {"mode": "wait", "handshake_dir": tmp_path})
    _step_pid(tmp_path)
    # when the worker gets SIGTERM while its step runs (a rolling restart)
    worker.process.send_signal(signal.SIGTERM)
    wait_until(
        lambda: "is shutting down" in cluster.console_text(task_id),
        timeout=15,
        message="the worker to say it is shutting down",
    )
    # a task enqueued now is not taken by the stopping worker
    later = cluster.launch(base, queue, {"mode": "record", "handshake_dir": tmp_path})
    # and the step, which finishes within the grace, completes normally
    (tmp_path / "go").touch()
    assert worker.process.wait(30) == 0
    task = cluster.task(task_id)
    assert (task["status"], task["status_reason"], task["attempt"]) == (
        "completed",
        "exit code 0",
        1,
    )
    assert not _listed(cluster, worker.name)
    assert cluster.task(later)["status"] == "queued"
    assert len(_runs(tmp_path)) == 1
    # the task it left in the queue runs on the next worker
    successor = cluster.start_worker(queue)
    task = cluster.wait_for_status(later, "completed", "failed", timeout=30)
    assert (task["status"], task["worker"]) == ("completed", successor.name)
    successor.stop()


def test_a_step_outliving_the_grace_is_handed_back_and_runs_once_more_uncharged(
    cluster, base, tmp_path
):
    queue = cluster.queue("handback")
    worker = cluster.start_worker(queue, PIPELINES_SHUTDOWN_GRACE_SECONDS="1")
    task_id = cluster.launch(
        base, queue, {"mode": "wait", "handshake_dir": tmp_path}, max_attempts=1
    )
    first_pid = _step_pid(tmp_path)
    # when the worker is stopped and its step is still running when the grace ends
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(30) == 0
    # then the step was killed and the attempt handed back, not failed and not charged
    assert not pid_alive(first_pid)
    task = cluster.task(task_id)
    assert task["status"] == "queued", (task["status"], task["status_reason"])
    assert task["status_reason"].startswith(f"handed back by {worker.name}")
    assert task["attempt"] == 1
    assert "not counted as an attempt" in cluster.console_text(task_id)
    assert not _listed(cluster, worker.name)
    # and another worker runs it, to completion, once
    other = cluster.start_worker(queue)
    _step_pid(tmp_path, count=2)
    (tmp_path / "go").touch()
    task = cluster.wait_for_status(task_id, "completed", "failed", timeout=30)
    assert (task["status"], task["attempt"], task["worker"]) == ("completed", 1, other.name)
    assert len(_runs(tmp_path)) == 2
    assert all("attempt=1" in line for line in _runs(tmp_path))
    assert cluster.console_text(task_id).count("STEP DONE") == 1
    other.stop()


def test_a_second_stop_signal_hands_the_step_back_at_once(cluster, base, tmp_path):
    queue = cluster.queue("now")
    worker = cluster.start_worker(queue, PIPELINES_SHUTDOWN_GRACE_SECONDS="600")
    task_id = cluster.launch(base, queue, {"mode": "wait", "handshake_dir": tmp_path})
    step_pid = _step_pid(tmp_path)
    worker.process.send_signal(signal.SIGTERM)
    wait_until(
        lambda: "is shutting down" in cluster.console_text(task_id),
        timeout=15,
        message="the worker to start its warm shutdown",
    )
    # when a second SIGINT comes long before the 600 s grace is over (Ctrl-C again)
    worker.process.send_signal(signal.SIGINT)
    # then the step is stopped and handed back now, and the worker exits cleanly
    assert worker.process.wait(30) == 0
    assert not pid_alive(step_pid)
    task = cluster.task(task_id)
    assert (task["status"], task["attempt"]) == ("queued", 1)
    assert "told to stop at once" in task["status_reason"]


def test_a_hand_back_is_only_the_running_workers_and_a_repeat_changes_nothing(
    cluster, base, tmp_path
):
    queue = cluster.queue("fence")
    worker = cluster.start_worker(queue, PIPELINES_SHUTDOWN_GRACE_SECONDS="1")
    task_id = cluster.launch(base, queue, {"mode": "wait", "handshake_dir": tmp_path})
    _step_pid(tmp_path)
    release = f"{cluster.server.url}/api/v1/tasks/{task_id}/release/"
    wkey = cluster.server.worker_key
    # another worker's name, a wrong attempt, a user's (non-staff) key: refused, nothing moves
    for body, key, code in (
        ({"attempt": 1, "worker": "someone-else"}, wkey, 409),
        ({"attempt": 2, "worker": worker.name}, wkey, 409),
        ({"attempt": 0, "worker": worker.name}, wkey, 400),
        ({"attempt": "x", "worker": worker.name}, wkey, 400),
        ({"attempt": 1}, wkey, 400),
    ):
        response = cluster.server.api(key).post(release, json=body)
        assert response.status_code == code, (body, response.text)
    assert cluster.task(task_id)["status"] == "in_progress"
    anonymous = requests.post(release, json={"attempt": 1, "worker": worker.name}, timeout=10)
    assert anonymous.status_code == 401
    # when the worker hands it back, then the same hand-back again (its answer was lost)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(30) == 0
    again = cluster.server.api(wkey).post(release, json={"attempt": 1, "worker": worker.name})
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["attempt"]) == ("queued", 1)
    # and the stale worker's heartbeat for that attempt is told to stop
    beat = cluster.server.api(wkey).post(
        f"{cluster.server.url}/api/v1/tasks/{task_id}/heartbeat/",
        json={"attempt": 1, "worker": worker.name},
    )
    assert beat.json()["keep_running"] is False
    assert cluster.queues_listed()[queue]["length"] == 1


def test_a_worker_that_stopped_reporting_leaves_the_workers_list(cluster, tmp_path):
    queue = cluster.queue("forget")
    doomed = cluster.start_worker(queue)
    survivor = cluster.start_worker(queue)
    # when a worker dies without unregistering (SIGKILL, its machine gone)
    doomed.kill()
    # then, after WORKER_FORGET_SECONDS, the sweep removes it from the API's list...
    wait_until(
        lambda: not _listed(cluster, doomed.name),
        timeout=30,
        interval=0.2,
        message="the dead worker to be forgotten",
    )
    sweeps = next(p for p in cluster.processes if p.name == "server-worker").log()
    assert any("'forgotten': [" in line and doomed.name in line for line in sweeps.splitlines())
    # ...and from the dashboard's workers page, while the live one stays on both
    assert _listed(cluster, survivor.name)
    browser = requests.Session()
    browser.get(f"{cluster.server.url}/login/", timeout=10)
    browser.post(
        f"{cluster.server.url}/login/",
        data={
            "username": "admin",
            "password": cluster.server.password,
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": f"{cluster.server.url}/login/"},
        timeout=10,
    )
    page = browser.get(f"{cluster.server.url}/workers/", timeout=10)
    assert page.status_code == 200 and 'id="workers"' in page.text
    assert survivor.name in page.text and doomed.name not in page.text
    survivor.stop()
