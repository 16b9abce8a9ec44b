"""Driving a run from the controller's own process: what start_locally() (and a start()
with callbacks, re-run on `services`) does, and a decorator pipeline with callbacks or
run_locally() does beside its script.

The server still records everything and follows every task; this loop decides when a
ready step launches, so that its pre_execute_callback runs first (shown the step's values
as the server resolves them, its edits honoured, False skipping it and its subtree), and
calls the status and post-execute callbacks as steps change. With `local` the steps run
as subprocesses of this process (local_steps.py).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from . import dag
from .client import ApiError
from .local_steps import LocalStep
from .worker.step_setup import StepSupervisor

if TYPE_CHECKING:
    from .controller import PipelineController

TERMINAL = {"completed", "failed", "stopped"}
# How often the controller asks about its run: often while the run is young, when a short
# pipeline's end is most of its overhead, then less and less up to once a second, so a run
# of hours costs the server about one request a second.
POLL_SECONDS = (0.1, 1.0)
POLL_GROWTH = 1 / 40  # the pause is this fraction of the time waited so far, within those


def poll_pause(started: float) -> float:
    shortest, longest = POLL_SECONDS
    return min(longest, max(shortest, (time.monotonic() - started) * POLL_GROWTH))


class RunDriver:
    def __init__(self, pipe: PipelineController, local: bool = False):
        self.pipe = pipe
        self.local = local
        self.seen: dict[str, str] = {}
        self.launched: set[str] = set()
        self.local_steps: list[LocalStep] = []
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self._supervisor: StepSupervisor | None = None

    def drive(self) -> dict:
        """Launch, follow and call back until the run ends (or `stopping` is set)."""
        started = time.monotonic()
        while True:
            run = self.pipe._refresh(advance=True)
            nodes = {node["name"]: node for node in run["nodes"]}
            for name, node in nodes.items():
                previous = self.seen.get(name, "pending")
                if node["status"] != previous:
                    self.seen[name] = node["status"]
                    if node["status"] == "pending":
                        self.launched.discard(name)  # retried: launched again
                    self.pipe._on_status(name, node, previous)
            if run["status"] in TERMINAL or self.stopping.is_set():
                return run
            states = {name: node["status"] for name, node in nodes.items()}
            for name in dag.next_actions(run["steps"], states).launch:
                if name not in self.launched:
                    self.launched.add(name)
                    self._launch(name, run)
            time.sleep(poll_pause(started))

    def start_in_background(self) -> threading.Thread:
        """Drive from a thread (a decorator pipeline's script runs meanwhile)."""

        def target():
            try:
                self.drive()
            except BaseException as error:  # noqa: BLE001 - the script is told when it waits
                self.error = error

        thread = threading.Thread(target=target, name="pipeline-driver", daemon=True)
        thread.start()
        return thread

    def _launch(self, name: str, run: dict) -> None:
        pipe, client = self.pipe, self.pipe._client
        callbacks = pipe._callbacks.get(name, {})
        body: dict = {"step": name}
        if callbacks.get("pre"):
            try:
                resolved = client.post(f"pipelines/{run['id']}/resolve/", {"step": name})
            except ApiError as error:
                if error.status != 409:
                    raise
                resolved = None  # cannot be resolved: the launch fails it, naming why
            if resolved is not None:
                values = dict(resolved["parameters"])
                node = pipe._node(name)
                node.parameters = values
                if callbacks["pre"](pipe, node, values) is False:
                    client.post(
                        f"pipelines/{run['id']}/skip/",
                        {"step": name, "reason": "pre_execute_callback returned False"},
                    )
                    return
                body["parameters"] = values  # as the callback left them
                body["configuration"] = resolved["configuration"]
        step = next((s for s in run["steps"] if s["name"] == name), {})
        local = self.local and step.get("map") is None
        body["local"] = local
        node = client.post(f"pipelines/{run['id']}/launch/", body)
        if local and node.get("task") and node.get("status") == "queued":
            if self._supervisor is None:
                self._supervisor = StepSupervisor()
            runner = LocalStep(client, node["task"], self._supervisor)
            self.local_steps.append(runner)
            runner.start()

    def join_local_steps(self, timeout: float = 30.0) -> None:
        """Wait (bounded) for the local steps' reports, then stop their supervisor, which
        kills whatever of them is left."""
        deadline = time.monotonic() + timeout
        for runner in self.local_steps:
            runner.join(max(0.0, deadline - time.monotonic()))
        if self._supervisor is not None:
            self._supervisor.close()
            self._supervisor = None
