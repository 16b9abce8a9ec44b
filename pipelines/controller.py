"""PipelineController: ClearML's pipelines from tasks and from functions; the server runs
the DAG.

`start()` hands the validated DAG to the server and returns; the server-side engine clones,
overrides and enqueues each step as its parents finish. With Python callbacks (which only
this process can run) the launch decisions are made here instead, through the same server
verbs, as `start_locally()` does (run_driver.py).

A function step (`add_function_step`) is a draft task this controller registers, whose
script is generated from the function (function_steps.py); a map step (`add_map_step`)
runs a function over a list known only at run time, on the server's engine (fanout.py).
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import dag, fanout, function_steps, reruns
from .client import ApiError, get_client
from .liveness import Pinger
from .run_driver import TERMINAL, RunDriver, poll_pause
from .serialization import pickle_allowed
from .task import Task

__all__ = ["Node", "PipelineController"]


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
    # A function step's function: {name, kwargs, returns}.
    function: dict | None = None
    return_artifacts: list[str] = field(default_factory=list)

    @property
    def job(self) -> Task | None:
        return Task.get_task(task_id=self.executed) if self.executed else None


class PipelineController:
    """Define steps from base tasks or functions, then run them on the server."""

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
        allow_pickle: bool | None = None,
        **_ignored: Any,
    ):
        """`allow_pickle`: function steps load the values earlier steps returned as pickles
        (anything not numpy, pandas, JSON, text or a file) only with this opt-in; None
        takes it from this process's PIPELINES_ALLOW_PICKLE."""
        self._task = Task.current_task() or Task.init(
            project_name=project or "pipelines",
            task_name=name or "pipeline",
            task_type="controller",
        )
        self._version = version
        self._default_queue = default_execution_queue or "default"
        self._abort_on_failure = abort_on_failure
        self._allow_pickle = pickle_allowed(allow_pickle)
        self._steps: list[dict] = []
        self._callbacks: dict[str, dict] = {}
        self._parameters: dict[str, Any] = {}
        self._returns: dict[str, list[str]] = {}  # each function step's return values
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
        if not base_task_id and not base_task_name:
            raise ValueError(
                f"step {name!r}: give base_task_id, or base_task_project and base_task_name"
            )
        step = self._step(
            name,
            parents,
            parameter_override,
            configuration_overrides,
            execution_queue,
            time_limit,
            continue_on_fail,
            cache_executed_step,
            retry_on_failure,
            continue_behaviour,
        )
        if base_task_id:
            step["base_task_id"] = base_task_id
        else:
            step["base_task_project"] = base_task_project
            step["base_task_name"] = base_task_name
        self._add(step, pre_execute_callback, post_execute_callback, status_change_callback)
        return True

    def add_function_step(
        self,
        name: str,
        function: Callable,
        function_kwargs: dict | None = None,
        function_return: Sequence[str] | None = None,
        project_name: str | None = None,
        task_name: str | None = None,
        task_type: str | None = None,
        packages: str | Sequence[str] | None = None,
        repo: str | None = None,
        helper_functions: Sequence[Callable] | None = None,
        parents: Sequence[str] | None = None,
        execution_queue: str | None = None,
        time_limit: float | None = None,
        continue_on_fail: bool = False,
        pre_execute_callback=None,
        post_execute_callback=None,
        cache_executed_step: bool = False,
        retry_on_failure: int | None = None,
        status_change_callback=None,
        tags: Sequence[str] | None = None,
        continue_behaviour: dict | None = None,
        **_ignored: Any,
    ) -> bool:
        """A step that runs `function` as a task of its own (ClearML's semantics).

        The function's source and the helper functions it calls become the step's script;
        `function_kwargs` (the function's defaults fill the rest) may reference
        `${step.id}`, `${pipeline.param}`, `${step.artifacts.NAME}` (the artifact's value)
        or `${step.NAME}` (a function step's return value): a referenced step is a parent.
        Each name in `function_return` becomes an artifact of the step's task.
        """
        kwargs = {**function_steps.default_kwargs(function), **(function_kwargs or {})}
        returns = list(function_return or [])
        step = self._function_step(
            name,
            function,
            kwargs,
            returns,
            project_name=project_name,
            task_name=task_name,
            task_type=task_type,
            packages=packages,
            repo=repo,
            helper_functions=helper_functions,
            tags=tags,
        )
        step.update(
            self._step(
                name,
                [*(parents or []), *step.pop("parents")],
                step.pop("parameter_override"),
                None,
                execution_queue,
                time_limit,
                continue_on_fail,
                cache_executed_step,
                retry_on_failure,
                continue_behaviour,
            )
        )
        self._add(step, pre_execute_callback, post_execute_callback, status_change_callback)
        self._returns[name] = returns
        return True

    def add_map_step(
        self,
        name: str,
        function: Callable,
        items: list | str,
        item_kwarg: str | None = None,
        function_kwargs: dict | None = None,
        function_return: Sequence[str] | None = None,
        max_parallel: int | None = None,
        min_success_ratio: float = 1.0,
        items_per_task: int = 1,
        parents: Sequence[str] | None = None,
        execution_queue: str | None = None,
        time_limit: float | None = None,
        retry_on_failure: int | None = None,
        continue_on_fail: bool = False,
        status_change_callback=None,
        post_execute_callback=None,
        **function_options: Any,
    ) -> bool:
        """Run `function` once per item of `items`, a list known only at run time: a list,
        `${step.NAME}` (a step's return value holding a list), `${step.artifacts.NAME}` or
        `${pipeline.param}`. Each item is passed as `item_kwarg` (by default the function's
        first parameter not in `function_kwargs`).

        At most `max_parallel` of its tasks run at once, each running `items_per_task`
        items one after another (1: each item is a task of its own). The step succeeds
        when at least `min_success_ratio` of the items did; then `${name.RETURN}` is the
        list of results in the items' order (None for a failed item). A failed item is
        tried again `retry_on_failure` times.
        """
        kwarg = item_kwarg or function_steps.first_free_parameter(function, function_kwargs or {})
        kwargs = {**function_steps.default_kwargs(function), **(function_kwargs or {})}
        kwargs.pop(kwarg, None)
        # Each item's result is recorded, so a map always has a return value to hold it.
        returns = list(function_return or ["result"])
        step = self._function_step(name, function, kwargs, returns, **function_options)
        source_parents, items = self._map_items(items)
        step["map"] = {
            "kwarg": kwarg,
            "items": items,
            "max_parallel": max_parallel,
            "min_success_ratio": min_success_ratio,
            "items_per_task": items_per_task,
        }
        step.update(
            self._step(
                name,
                [*(parents or []), *step.pop("parents"), *source_parents],
                step.pop("parameter_override"),
                None,
                execution_queue,
                time_limit,
                continue_on_fail,
                False,
                retry_on_failure,
                None,
            )
        )
        fanout.map_settings(step)  # a bad setting fails here, naming it
        self._add(step, None, post_execute_callback, status_change_callback)
        self._returns[name] = returns
        return True

    def _map_items(self, items) -> tuple[list, Any]:
        """(the steps the items come from, the items as the map step holds them)."""
        if not isinstance(items, str):
            return [], list(items)
        source = function_steps.value_reference(items, self._returns)
        if source is not None:
            return [source[0]], function_steps.artifact_url_reference(*source)
        return [ref.step for ref in dag.parse_references(items) if ref.step], items

    def _function_step(self, name: str, function: Callable, kwargs: dict, returns: list, **options):
        """A function step's draft task registered, and its step's definition begun."""
        self._check_new_name(name)
        return function_steps.register(
            self._client,
            self._task,
            name,
            function,
            kwargs,
            returns,
            returns_of=self._returns,
            allow_pickle=self._allow_pickle,
            **options,
        )

    def _step(
        self,
        name,
        parents,
        parameter_override,
        configuration_overrides,
        execution_queue,
        time_limit,
        continue_on_fail,
        cache_executed_step,
        retry_on_failure,
        continue_behaviour,
    ) -> dict:
        self._check_new_name(name)
        step = {
            "name": name,
            "parents": list(dict.fromkeys(parents or [])),
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
        return step

    def _check_new_name(self, name: str) -> None:
        if any(step["name"] == name for step in self._steps):
            raise ValueError(f"step {name!r} is defined twice")

    def _add(self, step: dict, pre=None, post=None, status=None) -> None:
        self._steps.append(step)
        callbacks = {"pre": pre, "post": post, "status": status}
        if any(callbacks.values()):
            self._callbacks[step["name"]] = callbacks

    def validate(self) -> list[str]:
        """Check the graph here first, so mistakes surface before any request is sent."""
        return dag.validate_pipeline(self._steps, self._parameters)

    # ------------------------------------------------------------ plans and reruns

    def plan(self) -> "reruns.Plan":
        """Which steps start() would run and which it would reuse (cached), and why,
        compared with this pipeline's earlier runs. Nothing is started."""
        self.validate()
        return reruns.plan_definition(
            self._task.get_project_name(), self._task.name, self._steps, self._parameters
        )

    @staticmethod
    def rerun(
        run_id: str,
        from_step: str,
        parameter_override: dict | None = None,
        dry_run: bool = False,
    ) -> "reruns.PipelineRun | reruns.Plan":
        """Run the ended pipeline run `run_id` again from `from_step`: what completed above
        it is reused (same tasks, not run again), `from_step` and every step below it run,
        with `parameter_override` as {step: {"Section/name": value}}. Returns the new run
        (`.wait()`, `.nodes`), or with `dry_run` only its plan."""
        if dry_run:
            return reruns.plan_rerun(run_id, from_step, parameter_override)
        return reruns.rerun_from_step(run_id, from_step, parameter_override)

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
        """Run the launch loop in this process (callbacks run here); returns at the end.

        With `run_pipeline_steps_locally` each step runs as a subprocess of this process,
        still recorded as a task with its console, artifacts and plots.
        """
        self.validate()
        self._submit(driver="client")
        pinger = self._ping_while_driving()
        driver = RunDriver(self, local=run_pipeline_steps_locally)
        run = None
        try:
            run = driver.drive()
        finally:
            # After the run's end its steps have reported; after an error, none is waited for.
            driver.join_local_steps(timeout=30.0 if run else 0.0)
            if pinger is not None:
                pinger.stop()
        self._close_controller(run["status"])
        return self.is_successful()

    def _ping_while_driving(self) -> Pinger | None:
        # Nothing but this process launches the steps: ping, so that if it dies the
        # server stops the run instead of leaving it running for ever.
        if self._task._running_remotely:
            return None
        return Pinger(self._client, self._task.id).start()

    def _submit(self, driver: str, definition: str = "fixed") -> None:
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
                "definition": definition,
                # With the controller's project and name, what schedules and triggers
                # name the pipeline by.
                **({"version": str(self._version)} if self._version else {}),
            },
        )
        # The server (or the drive loop) decides how the controller task ends.
        self._task._finished = True
        url = f"{self._client.base}/pipelines/runs/{self._run['id']}/"
        print(f"pipeline {self._task.name!r} started: {url}", flush=True)

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
        import time

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
            time.sleep(poll_pause(started))

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

    def _step_named(self, name: str) -> dict:
        steps = self._run["steps"] if self._run else self._steps
        return next(s for s in [*steps, *self._steps] if s["name"] == name)

    def _node(self, name: str, row: dict | None = None) -> Node:
        step = self._step_named(name)
        row = row or next((n for n in (self._run or {}).get("nodes", []) if n["name"] == name), {})
        return Node(
            name=name,
            base_task_id=row.get("base_task") or step.get("base_task_id"),
            queue=step.get("execution_queue") or self._default_queue,
            parents=list(step.get("parents") or []),
            parameters=dict(step.get("parameter_override") or {}),
            executed=row.get("task"),
            status=row.get("status", "pending"),
            function=step.get("function"),
            return_artifacts=list((step.get("function") or {}).get("returns") or []),
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
