"""PipelineDecorator: ClearML's pipelines from decorated functions.

`@PipelineDecorator.component(...)` makes a function a pipeline step; `@PipelineDecorator.
pipeline(...)` makes a function the pipeline's logic. Calling the pipeline function starts
a run whose steps its logic adds as it calls components (an open definition on the server:
the run does not end before the logic has returned): each call registers the component as
a function step (function_steps.py) whose parents are the steps its arguments came from,
and returns at once a stand-in for each return value (lazy.py) that waits only when used.
The server launches each step as soon as its parents have ended, so components that do not
depend on each other run at the same time on workers.

Modes (class-wide, as in ClearML): by default the pipeline's logic is itself enqueued on
`pipeline_execution_queue` ("services") and re-run by a worker (None runs it here), with
the steps on workers; `run_locally()` runs the logic here and the steps as subprocesses of
this process; `debug_pipeline()` calls components as plain functions, with nothing sent to
the server.

`component.map(items, ...)` fans a component out over a list known only at run time (a
list, or another component's return value holding one), on the server's engine; it stands
for the list of results, in the items' order.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import function_steps, lazy
from .client import ApiError
from .controller import PipelineController
from .run_driver import TERMINAL, RunDriver, poll_pause
from .step_runtime import load_input
from .task import Task

DONE_OK = ("completed", "cached")
NODE_ENDED = ("completed", "cached", "failed", "skipped", "aborted")


class Component:
    """A decorated function: a step when called inside a running pipeline function, the
    plain function anywhere else."""

    def __init__(self, function: Callable, options: dict):
        functools.update_wrapper(self, function)
        self.function = function
        self.options = options
        self.returns = list(options.get("return_values") or [])

    def __call__(self, *args, **kwargs):
        pipeline = PipelineDecorator._running
        if pipeline is None or PipelineDecorator._mode == "debug":
            return self.function(*lazy.plain(args), **lazy.plain(kwargs))
        return pipeline.call(self, args, kwargs)

    def map(
        self,
        items,
        *,
        max_parallel: int | None = None,
        min_success_ratio: float = 1.0,
        items_per_task: int = 1,
        item_kwarg: str | None = None,
        **kwargs,
    ):
        """This component once per item of `items` (a list, or another component's return
        value holding one): a stand-in for the list of results, in the items' order (None
        for an item that failed). The map succeeds when `min_success_ratio` of its items
        did; at most `max_parallel` of its tasks run at once, each running `items_per_task`
        items."""
        pipeline = PipelineDecorator._running
        if pipeline is None or PipelineDecorator._mode == "debug":
            kwarg = item_kwarg or function_steps.first_free_parameter(self.function, kwargs)
            return [
                _or_none(self.function, **{**lazy.plain(kwargs), kwarg: item})
                for item in lazy.plain(items)
            ]
        settings = {
            "max_parallel": max_parallel,
            "min_success_ratio": min_success_ratio,
            "items_per_task": items_per_task,
        }
        return pipeline.map(self, items, item_kwarg, kwargs, settings)

    def __get__(self, instance, owner=None):
        return self if instance is None else functools.partial(self, instance)


def _or_none(function, **kwargs):
    try:
        return function(**kwargs)
    except Exception:  # noqa: BLE001 - a failed item is None, as on the server
        return None


class PipelineDecorator:
    """ClearML's PipelineDecorator: `component`, `pipeline`, and the class-wide modes."""

    _default_queue: str | None = None
    _mode: str = "remote"  # "remote", "local" (run_locally) or "debug" (debug_pipeline)
    _running: DecoratedRun | None = None
    _components: list[Component] = []

    @classmethod
    def component(
        cls,
        _func: Callable | None = None,
        *,
        return_values: Sequence[str] = ("return_object",),
        name: str | None = None,
        cache: bool = False,
        packages: str | Sequence[str] | None = None,
        parents: Sequence[str] | None = None,
        execution_queue: str | None = None,
        continue_on_fail: bool = False,
        task_type: str | None = None,
        repo: str | None = None,
        helper_functions: Sequence[Callable] | None = None,
        retry_on_failure: int | None = None,
        pre_execute_callback=None,
        post_execute_callback=None,
        status_change_callback=None,
        tags: Sequence[str] | None = None,
        continue_behaviour: dict | None = None,
        time_limit: float | None = None,
        **_ignored: Any,
    ):
        """Make a function a pipeline component; each name in `return_values` becomes an
        artifact of its task, and the call returns a stand-in for each (a tuple of them
        for several)."""
        options = {key: value for key, value in locals().items() if key not in ("cls", "_func")}
        options.pop("_ignored", None)
        options["return_values"] = list(return_values or [])

        def wrap(function: Callable) -> Component:
            component = Component(function, options)
            cls._components.append(component)
            return component

        return wrap(_func) if _func is not None else wrap

    @classmethod
    def pipeline(
        cls,
        _func: Callable | None = None,
        *,
        name: str,
        project: str,
        version: str | None = None,
        return_value: str | None = None,
        default_queue: str | None = None,
        pool_frequency: float = 0.2,
        add_pipeline_tags: bool = False,
        target_project: str | None = None,
        abort_on_failure: bool = False,
        pipeline_execution_queue: str | None = "services",
        allow_pickle: bool | None = None,
        **_ignored: Any,
    ):
        """Make a function the pipeline's logic: calling it runs the pipeline (see the
        module's modes) and returns what the function returns. `allow_pickle` as for
        PipelineController (None: this process's PIPELINES_ALLOW_PICKLE)."""
        settings = {
            "name": name,
            "project": project,
            "version": version,
            "return_value": return_value,
            "default_queue": default_queue,
            "abort_on_failure": abort_on_failure,
            "pipeline_execution_queue": pipeline_execution_queue,
            "allow_pickle": allow_pickle,
        }

        def wrap(function: Callable) -> Callable:
            @functools.wraps(function)
            def run_pipeline(*args, **kwargs):
                if cls._mode == "debug":
                    return function(*args, **kwargs)
                return DecoratedRun(cls, function, settings).run(args, kwargs)

            return run_pipeline

        return wrap(_func) if _func is not None else wrap

    @classmethod
    def set_default_execution_queue(cls, default_execution_queue: str | None) -> None:
        cls._default_queue = default_execution_queue

    @classmethod
    def run_locally(cls) -> None:
        """Run the pipeline's logic here and its steps as subprocesses of this process."""
        cls._mode = "local"

    @classmethod
    def debug_pipeline(cls) -> None:
        """Call components as plain functions, one after another; nothing is sent."""
        cls._mode = "debug"

    @classmethod
    def get_current_pipeline(cls) -> PipelineController | None:
        return cls._running.controller if cls._running else None


class DecoratedRun:
    """One call of a pipeline function: its controller, its run, its steps."""

    def __init__(self, decorator: type[PipelineDecorator], function: Callable, settings: dict):
        self.decorator, self.function, self.settings = decorator, function, settings
        self.controller: PipelineController | None = None
        self.driver: RunDriver | None = None
        self.names: dict[str, int] = {}

    def run(self, args, kwargs):
        settings, decorator = self.settings, self.decorator
        task = Task.current_task() or Task.init(
            project_name=settings["project"], task_name=settings["name"], task_type="controller"
        )
        queue = settings["pipeline_execution_queue"]
        if decorator._mode == "remote" and queue and task.running_locally():
            # As ClearML does: the logic runs on a worker of `queue`, this process exits.
            task.execute_remotely(queue_name=queue, exit_process=True)
        controller = self.controller = PipelineController(
            name=settings["name"],
            project=settings["project"],
            version=settings["version"],
            default_execution_queue=settings["default_queue"] or decorator._default_queue,
            abort_on_failure=settings["abort_on_failure"],
            allow_pickle=settings["allow_pickle"],
        )
        bound = inspect.signature(self.function).bind(*args, **kwargs)
        bound.apply_defaults()
        for key, value in bound.arguments.items():
            shown = (
                value if isinstance(value, str | int | float | bool | type(None)) else repr(value)
            )
            controller.add_parameter(key, shown)
        local = decorator._mode == "local"
        callbacks = any(
            c.options.get(k)
            for c in decorator._components
            for k in ("pre_execute_callback", "post_execute_callback", "status_change_callback")
        )
        controller._submit(driver="client" if local or callbacks else "server", definition="open")
        pinger = controller._ping_while_driving()
        thread = None
        if local or callbacks:
            self.driver = RunDriver(controller, local=local)
            thread = self.driver.start_in_background()
        decorator._running = self
        try:
            result = self.function(*args, **kwargs)
            result = lazy.plain(result)
            controller._run = controller._client.post(f"pipelines/{controller._run['id']}/close/")
            final = self._wait_for_end(thread)
        except BaseException:
            decorator._running = None
            self._stop_after_error(pinger)
            raise
        decorator._running = None
        if self.driver is not None:
            self.driver.join_local_steps()
        if pinger is not None:
            pinger.stop()
        if settings["return_value"]:
            task.upload_artifact(settings["return_value"], result)
        controller._close_controller(final["status"])
        print(f"pipeline {final['status']}", flush=True)
        return result

    def _wait_for_end(self, thread) -> dict:
        started = time.monotonic()
        while True:
            run = self.controller._refresh()
            if run["status"] in TERMINAL:
                return run
            if self.driver is not None and self.driver.error is not None:
                raise self.driver.error
            time.sleep(poll_pause(started))

    def _stop_after_error(self, pinger) -> None:
        controller = self.controller
        if self.driver is not None:
            self.driver.stopping.set()
            self.driver.join_local_steps(timeout=0.0)
        try:
            controller._client.post(f"pipelines/{controller._run['id']}/stop/")
        except ApiError:
            pass
        if pinger is not None:
            pinger.stop()
        controller._close_controller("failed")

    # ------------------------------------------------------------ components

    def _name(self, component: Component) -> str:
        base = component.options.get("name") or component.function.__name__
        count = self.names.get(base, 0)
        self.names[base] = count + 1
        return base if count == 0 else f"{base}_{count}"

    def _arguments(self, component: Component, args, kwargs) -> dict:
        """The call's arguments, each a value, or a reference for another step's result."""
        bound = inspect.signature(component.function).bind_partial(*args, **kwargs)
        given = {}
        for key, value in bound.arguments.items():
            given[key] = (
                lazy.reference(value) if isinstance(value, lazy.LazyResult) else (lazy.plain(value))
            )
        return given

    def call(self, component: Component, args, kwargs):
        name = self._name(component)
        self._add_step(name, component, self._arguments(component, args, kwargs), component.returns)
        results = [lazy.LazyResult(self, name, value) for value in component.returns]
        if not results:
            return lazy.LazyResult(self, name, None)
        return results[0] if len(results) == 1 else tuple(results)

    def map(self, component: Component, items, item_kwarg, kwargs, settings):
        name = self._name(component)
        given = self._arguments(component, (), kwargs)
        kwarg = item_kwarg or function_steps.first_free_parameter(component.function, given)
        if isinstance(items, lazy.LazyResult):
            source, artifact = lazy.step_of(items), object.__getattribute__(items, "_name")
            listed = function_steps.artifact_url_reference(source, artifact)
        else:
            source, listed = None, list(lazy.plain(items))
        fan_out = {"kwarg": kwarg, "items": listed, **settings}
        returns = component.returns or ["result"]  # each item's result is recorded
        parents = [source] if source else []
        self._add_step(name, component, given, returns, fan_out=fan_out, extra_parents=parents)
        results = [lazy.LazyResult(self, name, value) for value in returns]
        return results[0] if len(results) == 1 else tuple(results)

    def _add_step(self, name, component, given, returns, fan_out=None, extra_parents=()) -> None:
        controller, options = self.controller, component.options
        kwargs = {**function_steps.default_kwargs(component.function), **given}
        if fan_out is not None:
            kwargs.pop(fan_out["kwarg"], None)
        step = controller._function_step(
            name,
            component.function,
            kwargs,
            returns,
            task_type=options.get("task_type"),
            packages=options.get("packages"),
            repo=options.get("repo"),
            helper_functions=options.get("helper_functions"),
            tags=options.get("tags"),
        )
        if fan_out is not None:
            step["map"] = fan_out
        step.update(
            controller._step(
                name,
                [*(options.get("parents") or []), *step.pop("parents"), *extra_parents],
                step.pop("parameter_override"),
                None,
                options.get("execution_queue"),
                options.get("time_limit"),
                options.get("continue_on_fail"),
                options.get("cache") and fan_out is None,
                options.get("retry_on_failure"),
                options.get("continue_behaviour"),
            )
        )
        controller._add(
            step,
            options.get("pre_execute_callback") if fan_out is None else None,
            options.get("post_execute_callback"),
            options.get("status_change_callback"),
        )
        controller._returns[name] = list(returns)
        controller._run = controller._client.post(
            f"pipelines/{controller._run['id']}/steps/", {"steps": [step]}
        )

    # ------------------------------------------------------------ results

    def result_of(self, step: str, name: str | None) -> Any:
        """Wait for `step` to end; its return value `name`, loaded (None: just the wait)."""
        controller, started = self.controller, time.monotonic()
        while True:
            run = controller._refresh()
            node = next((n for n in run["nodes"] if n["name"] == step), None)
            if node is not None and node["status"] in NODE_ENDED:
                break
            if run["status"] in TERMINAL:
                break
            if self.driver is not None and self.driver.error is not None:
                raise self.driver.error
            time.sleep(poll_pause(started))
        if node is None or node["status"] not in DONE_OK:
            status = node["status"] if node else run["status"]
            why = f": {node['message']}" if node and node.get("message") else ""
            raise RuntimeError(f"pipeline step {step!r} {status}{why}")
        if name is None:
            return None
        artifact = Task.get_task(task_id=node["task"]).artifacts[name]
        return load_input(artifact.url, allow_pickle=controller._allow_pickle)
