"""The broker fails under a running system (reliability.md R4, R5, R6, R7, R11).

These tests restart a broker, so they bring their own: the embedded Redis (append-only file
on, as `pipelines up` runs it), owned by this module's cluster. They never touch the
machine's Redis or RabbitMQ. Redelivery on a visibility timeout (R11) is Redis behaviour, and
the restarts are of a Redis server, so the RabbitMQ lane skips the module.
"""

import os
import shutil
import time
from pathlib import Path

import pytest

from pipelines.launcher.embedded_redis import EmbeddedRedis
from tests.support import start_cluster

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.execution,
    pytest.mark.skipif(
        os.environ.get("PIPELINES_TEST_BROKER_URL", "").startswith("amqp"),
        reason="restarts a Redis broker of its own; run in the Redis lanes",
    ),
]


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    folder = tmp_path_factory.mktemp("broker")
    redis = EmbeddedRedis(folder, log_path=folder / "redis.log").start()
    yield redis
    redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, broker):
    """A cluster on `broker` whose reconciler republishes unclaimed tasks after 2 s."""
    running = start_cluster(
        tmp_path_factory.mktemp("broker-cluster"), broker=broker, QUEUED_REPUBLISH_SECONDS="2"
    )
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def broker_running(broker):
    """Every test starts and ends with the broker up, whatever it did to it."""
    yield
    if broker.process is None or broker.process.poll() is not None:
        broker.start()


def _kill(broker: EmbeddedRedis, wipe: bool = False) -> None:
    """SIGKILL: no final write of the append-only file. `wipe` loses everything on disk."""
    broker.process.kill()
    broker.process.wait(10)
    if wipe:
        shutil.rmtree(broker.data_dir / "redis")


def _runs(folder: Path) -> list[str]:
    path = folder / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


def _ran_once_each(folder: Path, task_ids: list[str]) -> None:
    ran = [line.split()[0] for line in _runs(folder)]
    assert sorted(ran) == sorted(task_ids), _runs(folder)
    assert all("attempt=1" in line for line in _runs(folder))


def test_queued_tasks_survive_a_broker_restart_and_run_exactly_once(
    cluster, broker, base, tmp_path
):
    queue = cluster.queue("persisted")
    task_ids = [
        cluster.launch(base, queue, {"mode": "record", "handshake_dir": tmp_path}) for _ in range(5)
    ]
    # when the broker stops (SIGTERM: it writes its append-only file) and comes back
    broker.stop()
    store = broker.data_dir / "redis"
    aof = b"".join(p.read_bytes() for p in store.rglob("appendonly*") if p.is_file())
    assert all(task_id.encode() in aof for task_id in task_ids)
    broker.start()
    # then a worker started afterwards runs each task once
    worker = cluster.start_worker(queue)
    for task_id in task_ids:
        task = cluster.wait_for_status(task_id, "completed", "failed", timeout=30)
        assert task["status"] == "completed" and task["attempt"] == 1
    _ran_once_each(tmp_path, task_ids)
    worker.stop()


def test_tasks_a_wiped_broker_lost_are_republished_and_run_exactly_once(
    cluster, broker, base, tmp_path
):
    queue = cluster.queue("lost")
    task_ids = [
        cluster.launch(base, queue, {"mode": "record", "handshake_dir": tmp_path}) for _ in range(3)
    ]
    # when the broker dies and comes back empty: its messages are gone for good
    _kill(broker, wipe=True)
    broker.start()
    worker = cluster.start_worker(queue)
    # then the reconciler publishes the queued tasks again and each runs once
    for task_id in task_ids:
        task = cluster.wait_for_status(task_id, "completed", "failed", timeout=30)
        assert task["status"] == "completed" and task["attempt"] == 1
    _ran_once_each(tmp_path, task_ids)
    sweeps = next(p for p in cluster.processes if p.name == "server-worker").log()
    republished = [line for line in sweeps.splitlines() if "'republished': [" in line]
    assert all(any(task_id in line for line in republished) for task_id in task_ids)
    worker.stop()


def test_an_idle_worker_keeps_consuming_after_the_broker_restarts(cluster, broker, base, tmp_path):
    queue = cluster.queue("reconnect")
    worker = cluster.start_worker(queue)
    # when the broker is killed and restarted three times in a row
    for _ in range(3):
        _kill(broker)
        broker.start()
    # then the same worker process takes the next task
    task_id = cluster.launch(base, queue, {"mode": "record", "handshake_dir": tmp_path})
    task = cluster.wait_for_status(task_id, "completed", "failed", timeout=45)
    assert task["status"] == "completed" and task["worker"] == worker.name
    assert worker.process.poll() is None
    worker.stop()


def test_enqueue_while_the_broker_is_down_answers_at_once_and_runs_when_it_is_back(
    cluster, broker, base, tmp_path
):
    queue = cluster.queue("outage")
    worker = cluster.start_worker(queue)
    clone = cluster.post(f"tasks/{base}/clone/", {"name": "enqueued in an outage"})
    cluster.server.api().put(
        f"{cluster.server.url}/api/v1/tasks/{clone['id']}/hyperparameters/",
        json={"values": {"General": {"mode": "record", "handshake_dir": str(tmp_path)}}},
    ).raise_for_status()
    broker.stop()
    # when a user enqueues while the broker is down
    started = time.monotonic()
    response = cluster.server.api().post(
        f"{cluster.server.url}/api/v1/tasks/{clone['id']}/enqueue/", json={"queue": queue}
    )
    elapsed = time.monotonic() - started
    # then the answer comes at once: the task is queued, its message still owed
    assert response.status_code == 200, response.text
    assert elapsed <= 3, f"enqueue took {elapsed:.1f}s with the broker down"
    assert response.json()["status"] == "queued"
    assert cluster.queues_listed()[queue]["length"] == 1
    # the rest of the API is not held up by the broker either
    started = time.monotonic()
    cluster.task(clone["id"])
    assert time.monotonic() - started <= 3
    # and once the broker is back, the reconciler publishes it and it runs once
    broker.start()
    task = cluster.wait_for_status(clone["id"], "completed", "failed", timeout=45)
    assert task["status"] == "completed" and task["attempt"] == 1
    assert task["worker"] == worker.name
    _ran_once_each(tmp_path, [clone["id"]])
    worker.stop()


def test_a_step_outliving_the_visibility_timeout_is_redelivered_but_runs_once(
    cluster, base, tmp_path
):
    queue = cluster.queue("visibility")
    first = cluster.start_worker(queue, VISIBILITY_TIMEOUT="1")
    task_id = cluster.launch(base, queue, {"mode": "wait", "handshake_dir": tmp_path})
    cluster.wait_for_status(task_id, "in_progress", timeout=30)
    time.sleep(1.5)  # the message stays unacknowledged past the visibility timeout
    # when another worker starts: kombu hands it the unacknowledged message again
    second = cluster.start_worker(queue, VISIBILITY_TIMEOUT="1")
    second.wait_for_log(f"task {task_id} attempt 1 is not claimable", timeout=20)
    # then that delivery started nothing, and the step finishes once on the first worker
    assert cluster.task(task_id)["worker"] == first.name
    (tmp_path / "go").touch()
    task = cluster.wait_for_status(task_id, "completed", "failed")
    assert task["status"] == "completed" and task["attempt"] == 1
    assert len(_runs(tmp_path)) == 1
    assert first.process.poll() is None
    first.stop()
    second.stop()
