"""PipelineController: ClearML's pipeline-from-tasks API; the server runs the DAG.

`start()` hands the validated DAG to the server and returns; the server-side engine clones,
overrides and enqueues each step as its parents finish. With Python callbacks (which only
this process can run) the launch decisions are made here instead, through the same server
verbs, as `start_locally()` does.
"""

import json
import time
from dataclasses import dataclass, field
from typing import Any

from . import dag
from .client import ApiError, get_client
from .liveness import Pinger
from .task import Task

TERMINAL = {"completed", "failed", "stopped"}
# How often the controller asks about its run: often while the run is young, when a short
# pipeline's end is most of its overhead, then less and less up to once a second, so a run
# of hours costs the server about one request a second.
POLL_SECONDS = (0.1, 1.0)
POLL_GROWTH = 1 / 40  # the pause is this fraction of the time waited so far, within those


def _poll_pause(started: float) -> float:
    shortest, longest = POLL_SECONDS
    return min(longest, max(shortest, (time.monotonic() - started) * POLL_GROWTH))


@dataclass
class Node:
    """A step as the controller knows it (ClearML's PipelineController.Node)."""

    name: str
    base_task_id: str | None = None
    queue: str | None = None
    parents: list[str] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)
    executed: str | None = None
    status: str = "pending"
    job_started: float | None = None
    job_ended: float | None = None

    @property
    def job(self) -> Task | None:
        return Task.get_task(task_id=self.executed) if self.executed else None


class PipelineController:
    """Define steps from base tasks, then run them on the server."""

    Node = Node

    def __init__(
        self,
        name: str | None = None,
        project: str | None = None,
        version: str | None = None,
        pool_frequency: float = 0.2,
        add_pipeline_tags: bool = False,
        target_project: str | None = None,
        abort_on_failure: bool = False,
        add_run_number: bool = True,
        default_execution_queue: str | None = None,
        **_ignored: Any,
    ):
        self._task = Task.current_task() or Task.init(
            project_name=project or "pipelines",
            task_name=name or "pipeline",
            task_type="controller",
        )
        self._version = version
        self._default_queue = default_execution_queue or "default"
        self._abort_on_failure = abort_on_failure
        self._steps: list[dict] = []
        self._callbacks: dict[str, dict] = {}
        self._parameters: dict[str, Any] = {}
        self._run: dict | None = None
        self._client = get_client()

    # ------------------------------------------------------------ definition

    def set_default_execution_queue(self, default_execution_queue: str | None) -> None:
        self._default_queue = default_execution_queue or "default"

    def add_parameter(self, name: str, default: Any = None, description: str | None = None, **_):
        """A pipeline argument, referenced by steps as ${pipeline.NAME}."""
        self._parameters[name] = default

    def get_parameters(self) -> dict:
        return dict(self._parameters)

    def add_step(
        self,
        name: str,
        base_task_id: str | None = None,
        parents: list[str] | None = None,
        parameter_override: dict | None = None,
        configuration_overrides: dict | None = None,
        execution_queue: str | None = None,
        time_limit: float | None = None,
        base_task_project: str | None = None,
        base_task_name: str | None = None,
        continue_on_fail: bool = False,
        pre_execute_callback=None,
        post_execute_callback=None,
        cache_executed_step: bool = False,
        retry_on_failure: int | None = None,
        status_change_callback=None,
        continue_behaviour: dict | None = None,
        **_ignored: Any,
    ) -> bool:
        """Add a step cloned from a base task. The whole DAG is validated at start()."""
        if any(step["name"] == name for step in self._steps):
            raise ValueError(f"step {name!r} is defined twice")
        if not base_task_id and not base_task_name:
            raise ValueError(
                f"step {name!r}: give base_task_id, or base_task_project and base_task_name"
            )
        step = {
            "name": name,
            "parents": list(parents or []),
            "parameter_override": dict(parameter_override or {}),
            "configuration_overrides": {
                k: (v if isinstance(v, str | int | float | bool) else _json(v))
                for k, v in (configuration_overrides or {}).items()
            },
            "execution_queue": execution_queue,
            "time_limit": time_limit,
            "continue_on_fail": bool(continue_on_fail),
            "cache_executed_step": bool(cache_executed_step),
            "retry_on_failure": int(retry_on_failure or 0),
        }
        if continue_behaviour is not None:
            step["continue_behaviour"] = dict(continue_behaviour)
        if base_task_id:
            step["base_task_id"] = base_task_id
        else:
            step["base_task_project"] = base_task_project
            step["base_task_name"] = base_task_name
        self._steps.append(step)
        callbacks = {
            "pre": pre_execute_callback,
            "post": post_execute_callback,
            "status": status_change_callback,
        }
        if any(callbacks.values()):
            self._callbacks[name] = callbacks
        return True

    def validate(self) -> list[str]:
        """Check the graph here first, so mistakes surface before any request is sent."""
        return dag.validate_pipeline(self._steps, self._parameters)

    # ------------------------------------------------------------ running

    def start(self, queue: str = "services", wait: bool = False, **_ignored: Any) -> bool:
        """Hand the pipeline to the server and return at once (it runs there).

        With Python callbacks the controller script itself must run them: as ClearML does,
        it is registered and enqueued on `queue`, and a worker re-runs it, where start()
        drives the run in-process.
        """
        self.validate()
        if self._callbacks:
            if self._task.running_locally():
                self._task.execute_remotely(queue_name=queue, exit_process=True)
            return self.start_locally()
        self._submit(driver="server")
        if wait:
            self.wait()
        return True

    def start_locally(self, run_pipeline_steps_locally: bool = False) -> bool:
        """Run the launch loop in this process (callbacks run here); returns at the end."""
        self.validate()
        if run_pipeline_steps_locally:
            # Checked before anything is submitted, so nothing is left half-started.
            raise NotImplementedError(
                "run_pipeline_steps_locally=True is not supported yet: run a step worker "
                "on this machine instead (`pipelines worker -q default`)"
            )
        self._submit(driver="client")
        # Nothing but this process launches the steps: ping, so that if it dies the
        # server stops the run instead of leaving it running for ever.
        pinger = None if self._task._running_remotely else Pinger(self._client, self._task.id)
        if pinger is not None:
            pinger.start()
        try:
            self._drive()
        finally:
            if pinger is not None:
                pinger.stop()
        return self.is_successful()

    def _submit(self, driver: str) -> None:
        if self._run is not None:
            raise RuntimeError("this pipeline has already been started")
        self._run = self._client.post(
            "pipelines/",
            {
                "controller": self._task.id,
                "steps": self._steps,
                "parameters": self._parameters,
                "default_queue": self._default_queue,
                "abort_on_failure": self._abort_on_failure,
                "driver": driver,
                # With the controller's project and name, what schedules and triggers
                # name the pipeline by.
                **({"version": str(self._version)} if self._version else {}),
            },
        )
        # The server (or the drive loop) decides how the controller task ends.
        self._task._finished = True
        url = f"{self._client.base}/pipelines/runs/{self._run['id']}/"
        print(f"pipeline {self._task.name!r} started: {url}", flush=True)

    def _drive(self) -> None:
        seen: dict[str, str] = {}
        started = time.monotonic()
        while True:
            run = self._refresh(advance=True)
            nodes = {node["name"]: node for node in run["nodes"]}
            for name, node in nodes.items():
                previous = seen.get(name, "pending")
                if node["status"] != previous:
                    seen[name] = node["status"]
                    self._on_status(name, node, previous)
            if run["status"] in TERMINAL:
                break
            states = {name: node["status"] for name, node in nodes.items()}
            for name in dag.next_actions(self._steps, states).launch:
                self._launch(name)
            time.sleep(_poll_pause(started))
        self._close_controller(run["status"])

    def _launch(self, name: str) -> None:
        callbacks = self._callbacks.get(name, {})
        step = next(s for s in self._steps if s["name"] == name)
        if callbacks.get("pre"):
            node = self._node(name)
            if callbacks["pre"](self, node, dict(step["parameter_override"])) is False:
                self._client.post(
                    f"pipelines/{self._run['id']}/skip/",
                    {"step": name, "reason": "pre_execute_callback returned False"},
                )
                return
        self._client.post(f"pipelines/{self._run['id']}/launch/", {"step": name})

    def _on_status(self, name: str, node: dict, previous: str) -> None:
        callbacks = self._callbacks.get(name, {})
        if callbacks.get("status"):
            callbacks["status"](self, self._node(name, node), previous)
        if callbacks.get("post") and node["status"] in ("completed", "cached"):
            callbacks["post"](self, self._node(name, node))

    def _close_controller(self, status: str) -> None:
        # Under a worker the exit code reports success; marking it here would fence us.
        if status == "completed" and not self._task.running_locally():
            return
        try:
            if status == "completed":
                self._task.mark_completed()
            else:
                self._task.mark_failed(status_reason=f"pipeline {status}")
        except ApiError:
            pass  # already ended (a worker reports it, or stop() aborted it)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (timeout in minutes, as ClearML); prints progress."""
        if self._run is None:
            return True
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout * 60
        last = ""
        while True:
            run = self._refresh()
            counts: dict[str, int] = {}
            for node in run["nodes"]:
                counts[node["status"]] = counts.get(node["status"], 0) + 1
            line = f"pipeline {run['status']}: " + ", ".join(
                f"{count} {status}" for status, count in sorted(counts.items())
            )
            if line != last:
                print(line, flush=True)
                last = line
            if run["status"] in TERMINAL:
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(_poll_pause(started))

    def stop(self, timeout: float | None = None, mark_failed: bool = False, **_: Any) -> None:
        """After the end: close without changing the outcome. During a run: abort it."""
        if self._run is not None and self._refresh()["status"] not in TERMINAL:
            self._run = self._client.post(f"pipelines/{self._run['id']}/stop/")
        if mark_failed and self._task.running_locally():
            try:
                self._task.mark_failed(status_reason="stopped by the controller")
            except ApiError:
                pass
        self._task.close()

    # ------------------------------------------------------------ state

    def _refresh(self, advance: bool = False) -> dict:
        if self._run is None:
            raise RuntimeError("the pipeline has not been started")
        verb = "post" if advance else "get"
        path = f"pipelines/{self._run['id']}/" + ("advance/" if advance else "")
        self._run = getattr(self._client, verb)(path)
        return self._run

    def _node(self, name: str, row: dict | None = None) -> Node:
        step = next(s for s in self._steps if s["name"] == name)
        row = row or next((n for n in (self._run or {}).get("nodes", []) if n["name"] == name), {})
        return Node(
            name=name,
            base_task_id=row.get("base_task") or step.get("base_task_id"),
            queue=step.get("execution_queue") or self._default_queue,
            parents=list(step["parents"]),
            parameters=dict(step["parameter_override"]),
            executed=row.get("task"),
            status=row.get("status", "pending"),
        )

    def is_running(self) -> bool:
        return self._run is not None and self._refresh()["status"] not in TERMINAL

    def is_successful(self) -> bool:
        return self._run is not None and self._refresh()["status"] == "completed"

    def get_processed_nodes(self) -> list[Node]:
        run = self._refresh() if self._run else {"nodes": []}
        done = {"completed", "cached", "failed", "skipped", "aborted"}
        return [self._node(n["name"], n) for n in run["nodes"] if n["status"] in done]

    def get_running_nodes(self) -> list[Node]:
        run = self._refresh() if self._run else {"nodes": []}
        return [
            self._node(n["name"], n) for n in run["nodes"] if n["status"] in ("queued", "running")
        ]

    def get_pipeline_dag(self) -> dict[str, Node]:
        run = self._refresh() if self._run else {"nodes": []}
        rows = {n["name"]: n for n in run["nodes"]}
        return {s["name"]: self._node(s["name"], rows.get(s["name"])) for s in self._steps}

    @property
    def id(self) -> str:
        return self._task.id


def _json(value: Any) -> str:
    return json.dumps(value)
