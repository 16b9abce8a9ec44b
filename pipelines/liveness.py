"""Pings for tasks this process runs itself (Task.init outside a worker, start_locally).

A worker heartbeats the tasks it runs; a user's own process pings instead, so a run whose
process was killed or whose machine went away is failed by the server's reaper (after its
`LOCAL_RUN_LEASE_SECONDS`) instead of showing `in_progress` for ever.
"""

import sys
import threading
from collections.abc import Callable

from .client import ApiError, Client

# Until the server says otherwise; it answers each ping with its lease.
FIRST_INTERVAL = 15.0
MIN_INTERVAL = 0.2


class Pinger:
    def __init__(self, client: Client, task_id: str, done: Callable[[], bool] | None = None):
        """`done` tells when the process has ended the run itself (checked before each
        ping), as `stop()` does."""
        self.client = client
        self.task_id = task_id
        self._done = done or (lambda: False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ping-{task_id[:8]}", daemon=True)

    def start(self) -> "Pinger":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _ended(self) -> bool:
        return self._stop.is_set() or self._done()

    def _run(self) -> None:
        interval = FIRST_INTERVAL
        while not self._ended():
            try:
                reply = self.client.post(f"tasks/{self.task_id}/ping/")
            except ApiError:
                reply = None  # the server is unreachable for now: try again next time
            if reply is not None:
                if not reply["keep_running"]:
                    if not self._ended() and reply["status"] != "in_progress":
                        print(
                            f"[pipelines] task {self.task_id} is {reply['status']} on the "
                            "server; this process no longer reports as running it",
                            file=sys.stderr,
                            flush=True,
                        )
                    return
                # Four pings per lease: one lost or late ping never ends a run.
                interval = max(MIN_INTERVAL, float(reply["lease_seconds"]) / 4)
            self._stop.wait(interval)
