"""A busy worker's liveness costs one request per heartbeat interval: the server counts an
accepted task heartbeat as the worker's presence, and the worker sends a presence beat only
to register and when no task heartbeat was accepted within its presence interval."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from pipelines.client import ApiError
from pipelines.worker.heartbeat import LivenessClock, TaskHeartbeat
from pipelines.worker.step_worker import StepWorker, WorkerConfig
from tests.factories import make_user
from webapp.core import execution, keys, services
from webapp.core.models import Worker


def _running_task(user, worker_name: str):
    task = services.create_task(user=user, project_name="p", name="step")
    task = services.enqueue_task(task, "default")
    task, _ = execution.claim_task(task.id, task.attempt, worker_name)
    return task


@pytest.mark.django_db
def test_an_accepted_task_heartbeat_is_the_workers_presence_and_a_refused_one_is_not():
    user = make_user("boss", staff=True)
    _, secret = keys.create_api_key(user, kind="worker", name="w")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert (
        api.post(
            "/api/v1/workers/heartbeat/", {"name": "w1", "queues": ["default"]}, format="json"
        ).status_code
        == 200
    )
    task = _running_task(user, "w1")
    long_ago = timezone.now() - timedelta(hours=1)
    Worker.objects.filter(name="w1").update(last_seen=long_ago)

    beat = api.post(
        f"/api/v1/tasks/{task.id}/heartbeat/", {"attempt": 1, "worker": "w1"}, format="json"
    )
    assert beat.json()["keep_running"] is True
    seen = Worker.objects.get(name="w1").last_seen
    assert seen > long_ago + timedelta(minutes=59)
    assert api.get("/api/v1/workers/").json()["results"][0]["alive"] is True

    # Another worker's beat for this attempt extends nothing and refreshes nobody.
    Worker.objects.create(name="w2", last_seen=long_ago)
    refused = api.post(
        f"/api/v1/tasks/{task.id}/heartbeat/", {"attempt": 1, "worker": "w2"}, format="json"
    )
    assert refused.json()["keep_running"] is False
    assert Worker.objects.get(name="w2").last_seen == long_ago


@pytest.mark.django_db
def test_a_presence_beat_names_the_task_only_to_a_caller_who_sees_it():
    owner, other = make_user("owner", staff=True), make_user("other")
    _, owner_secret = keys.create_api_key(owner, kind="worker", name="w")
    _, other_secret = keys.create_api_key(other, name="u")
    task = _running_task(owner, "w1")
    Worker.objects.create(name="w1", current_task=task)
    body = {"name": "w1", "queues": ["default"]}
    for secret, named in ((owner_secret, task.id), (other_secret, None)):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        answer = api.post("/api/v1/workers/heartbeat/", body, format="json")
        if answer.status_code == 200:
            assert answer.json()["current_task"] == named
        else:
            assert answer.status_code == 403 and named is None


class RecordingClient:
    """The worker's beat client: records each presence beat; fails while told to."""

    def __init__(self):
        self.beats = 0
        self.failing = False
        self.posted = threading.Event()

    def post(self, path, body):
        assert path == "workers/heartbeat/"
        self.beats += 1
        self.posted.set()
        if self.failing:
            raise ApiError(0, "refused")
        return {}


def _worker(interval: float) -> StepWorker:
    config = WorkerConfig(
        api_url="http://127.0.0.1:9",
        api_key="pk_x",
        broker_url="memory://",
        name="w",
        queues=["default"],
        presence_interval=interval,
    )
    worker = StepWorker(config)
    worker.beat_client = RecordingClient()
    return worker


def _beats_after(worker: StepWorker, turns: int, during) -> int:
    """Run the presence loop for `turns` presence intervals while `during` runs each turn."""
    thread = threading.Thread(target=worker._presence_loop, daemon=True)
    thread.start()
    try:
        for _ in range(turns):
            during()
            worker.stopped.wait(worker.config.presence_interval)
    finally:
        worker.stopped.set()
        thread.join(5)
    return worker.beat_client.beats


def test_a_busy_worker_registers_once_then_its_task_heartbeats_stand_for_its_presence():
    worker = _worker(interval=0.2)
    beating = threading.Event()

    def task_heartbeats():  # accepted far more often than the presence interval
        while not worker.stopped.wait(0.02):
            if beating.is_set():
                worker.liveness.beat()

    threading.Thread(target=task_heartbeats, daemon=True).start()
    registered = worker.beat_client.posted

    def start_beating():
        registered.wait(5)
        beating.set()

    assert _beats_after(worker, 10, start_beating) == 1


def test_an_idle_worker_beats_every_interval_and_a_failed_beat_waits_one_too():
    idle = _worker(interval=0.1)
    assert 5 <= _beats_after(idle, 10, lambda: None) <= 12
    failing = _worker(interval=0.1)
    failing.beat_client.failing = True
    # A refused registration is tried again after an interval, not in a tight loop.
    assert 5 <= _beats_after(failing, 10, lambda: None) <= 12


def test_the_heartbeat_thread_marks_the_clock_only_for_an_accepted_beat():
    replies = [{"keep_running": True}, {"keep_running": False}]

    class Client:
        def post(self, path, body):
            return replies.pop(0)

    clock = LivenessClock()
    heartbeat = TaskHeartbeat(Client(), "t" * 32, 1, "w", 0.01, clock)
    heartbeat.start()
    heartbeat.join(5)
    assert heartbeat.stop_reason and "says stop" in heartbeat.stop_reason
    assert clock.silent_for() < 5
    assert LivenessClock().silent_for() == float("inf")
