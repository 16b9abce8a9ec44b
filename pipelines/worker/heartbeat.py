"""A running step's lease: the heartbeat thread that extends it, and the clock of the last
beat the server accepted for this worker (which the server also counts as its presence)."""

import logging
import threading
import time

from ..client import ApiError, Client

log = logging.getLogger("pipelines.worker")


class LivenessClock:
    """When the server last heard from this worker, by any beat it accepted."""

    def __init__(self):
        self._last = float("-inf")

    def beat(self, at: float | None = None) -> None:
        at = time.monotonic() if at is None else at
        self._last = max(self._last, at)

    def silent_for(self) -> float:
        return time.monotonic() - self._last


class TaskHeartbeat(threading.Thread):
    """Extends the attempt's lease; records when the server says stop or stops answering."""

    def __init__(
        self,
        client: Client,
        task_id: str,
        attempt: int,
        worker: str,
        interval: float,
        liveness: LivenessClock | None = None,
    ):
        super().__init__(name=f"heartbeat-{task_id[:8]}", daemon=True)
        self.client, self.task_id, self.attempt, self.worker = client, task_id, attempt, worker
        self.interval = interval
        self.liveness = liveness or LivenessClock()
        self.last_accepted = time.monotonic()
        self.stop_reason: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        failures = 0
        while not self._halt.wait(self.interval):
            sent = time.monotonic()
            try:
                reply = self.client.post(
                    f"tasks/{self.task_id}/heartbeat/",
                    {"attempt": self.attempt, "worker": self.worker},
                )
            except ApiError as error:
                if error.status == 404:
                    self.stop_reason = "the task no longer exists"
                    return
                failures += 1
                if failures == 1:
                    log.warning("heartbeat for %s failed: %s", self.task_id, error)
                continue
            failures = 0
            # The send time, not the reply time: the server's lease started no earlier.
            self.last_accepted = sent
            self.liveness.beat(sent)
            if not reply.get("keep_running"):
                self.stop_reason = (
                    f"the server says stop (task is {reply.get('status')}, "
                    f"current attempt {reply.get('attempt')})"
                )
                return

    def silent_for(self) -> float:
        return time.monotonic() - self.last_accepted

    def halt(self) -> None:
        self._halt.set()
