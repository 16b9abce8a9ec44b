"""A pipeline definition as start_run takes it: checked whole, base tasks resolved.

Nothing is cloned when anything is wrong: every error names the step and parameter.
"""

import contextlib
import copy

from pipelines import dag, fanout, parameters

from .. import limits, services
from ..choices import TaskStatus
from ..errors import InvalidInput, NotFound
from ..models import Task
from ..parameters import normalize_configuration, normalize_hyperparameters

STEP_KEYS = {
    "name",
    "parents",
    "base_task_id",
    "base_task_project",
    "base_task_name",
    "parameter_override",
    "configuration_overrides",
    "execution_queue",
    "time_limit",
    "continue_on_fail",
    "continue_behaviour",
    "cache_executed_step",
    "retry_on_failure",
    # What a function step shows of its function ({name, kwargs, returns}); display only.
    "function",
    # A fan-out over a list known at run time (pipelines/fanout.py).
    "map",
}
FUNCTION_KEYS = {"name", "kwargs", "returns", "parameters"}


def checked_steps(steps: list, parameters: dict, tasks, existing: list = ()) -> list:
    """Copies of `steps`, validated, each with the id of its base task among `tasks`.

    `existing` are the checked steps of a run that `steps` are added to: the graph is
    validated whole, and only the new steps are cleaned and have their base tasks resolved.
    """
    clean = [_clean_step(index, step) for index, step in enumerate(steps, start=len(existing))]
    try:
        dag.validate_pipeline([*existing, *clean], parameters)
    except dag.PipelineDefinitionError as error:
        raise InvalidInput(str(error), step=error.step, parameter=error.parameter) from error
    for step in clean:
        check_overrides(step)
    resolve = _base_task_resolver(tasks, clean)
    for step in clean:
        step["base_task_id"] = resolve(step).id
        step.setdefault("execution_queue", None)
    return clean


def _clean_step(index: int, step) -> dict:
    if not isinstance(step, dict):
        raise InvalidInput(f"step {index} must be an object")
    unknown = set(step) - STEP_KEYS
    if unknown:
        raise InvalidInput(
            f"step {step.get('name', index)!r}: unknown field(s) {', '.join(sorted(unknown))}",
            step=step.get("name"),
        )
    clean = copy.deepcopy(step)
    name = step.get("name")
    clean["parents"] = list(clean.get("parents") or [])
    for key in ("parameter_override", "configuration_overrides"):
        value = clean.get(key) or {}
        if not isinstance(value, dict):
            raise InvalidInput(f"step {name!r}: {key} must be an object", step=name, parameter=key)
        clean[key] = value
    retries = clean.get("retry_on_failure") or 0
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
        raise InvalidInput(
            f"step {name!r}: retry_on_failure must be an integer from 0 to 100",
            step=name,
            parameter="retry_on_failure",
        )
    clean["retry_on_failure"] = retries
    if clean.get("time_limit"):
        with _naming(name, "time_limit"):
            clean["time_limit"] = limits.time_limit("time_limit", clean["time_limit"])
    if clean.get("execution_queue"):
        with _naming(name, "execution_queue"):
            clean["execution_queue"] = services.checked_queue_name(
                clean["execution_queue"], "execution_queue"
            )
    for key in ("base_task_id", "base_task_project", "base_task_name"):
        if clean.get(key) is not None:
            with _naming(name, key):
                limits.text(key, clean[key], limits.NAME_MAX)
    if clean.get("function") is not None:
        clean["function"] = _checked_function(name, clean["function"])
    if clean.get("map") is not None:
        try:
            clean["map"] = fanout.map_settings(clean)
        except dag.PipelineDefinitionError as error:
            raise InvalidInput(str(error), step=name, parameter=error.parameter) from error
        with _naming(name, "map.items"):
            limits.json_value("map.items", clean["map"]["items"], limits.CONFIGURATION_VALUE_MAX)
    return clean


def _checked_function(step, function) -> dict:
    """A function step's {name, kwargs, returns}: shown on the run page, never executed."""
    if not isinstance(function, dict) or set(function) - FUNCTION_KEYS:
        raise InvalidInput(
            f"step {step!r}: function must be an object of {', '.join(sorted(FUNCTION_KEYS))}",
            step=step,
            parameter="function",
        )
    name, kwargs = function.get("name"), function.get("kwargs")
    returns, order = function.get("returns"), function.get("parameters")
    with _naming(step, "function"):
        limits.text("function.name", name if isinstance(name, str) else "", limits.NAME_MAX)
        if not isinstance(kwargs or {}, dict):
            raise InvalidInput("kwargs must be an object", field="function")
        for label, names in (("returns", returns), ("parameters", order)):
            if (
                not isinstance(names or [], list)
                or len(names or []) > 100
                or any(
                    not isinstance(n, str) or not n or len(n) > limits.NAME_MAX for n in names or []
                )
            ):
                raise InvalidInput(f"{label} must be a list of at most 100 names", field="function")
        limits.json_value("function.kwargs", kwargs or {}, limits.OBJECT_MAX_BYTES)
    return {
        "name": name,
        "kwargs": dict(kwargs or {}),
        "returns": list(returns or []),
        "parameters": list(order or []),
    }


def check_overrides(step: dict) -> None:
    """The literal override values as the launch will store them on the clone; values
    holding references are checked again when they are resolved."""
    name = step["name"]
    literal = {k: v for k, v in step["parameter_override"].items() if not dag.parse_references(v)}
    with _naming(name, "parameter_override"):
        for key in literal:
            limits.text("parameter_override", str(key), 2 * limits.PARAMETER_NAME_MAX + 1)
        normalize_hyperparameters(parameters.nest(literal))
    config = step["configuration_overrides"]
    literal = {k: v for k, v in config.items() if not dag.parse_references(v)}
    with _naming(name, "configuration_overrides"):
        normalize_configuration(literal)


@contextlib.contextmanager
def _naming(step, parameter: str):
    """InvalidInput from a field check, naming the step and parameter it was about."""
    try:
        yield
    except InvalidInput as error:
        raise InvalidInput(
            f"step {step!r}, parameter {parameter!r}: {error.message}",
            step=step,
            parameter=parameter,
        ) from None


def _base_task_resolver(tasks, steps: list):
    """Resolves each step's base task; the ones named by id are read in one query and each
    (project, name) once, since a large pipeline usually reuses a few base tasks."""
    ids = {str(step["base_task_id"]) for step in steps if step.get("base_task_id")}
    by_id = {task.pk: task for task in tasks.filter(pk__in=ids).order_by()} if ids else {}
    by_name: dict = {}

    def resolve(step: dict) -> Task:
        name = step["name"]
        if step.get("base_task_id"):
            task = by_id.get(str(step["base_task_id"]))
            if task is None:
                # One answer for a random id, a deleted task and another team's task: the
                # caller cannot tell which (no existence oracle).
                raise NotFound(
                    f"step {name!r}: base task not found",
                    step=name,
                    parameter="base_task_id",
                )
            return task
        project, task_name = step.get("base_task_project"), step.get("base_task_name")
        if not task_name:
            raise InvalidInput(
                f"step {name!r}: give base_task_id, or base_task_project and base_task_name",
                step=name,
                parameter="base_task_name",
            )
        if (project, task_name) not in by_name:
            candidates = tasks.filter(name=task_name).exclude(status=TaskStatus.FAILED)
            if project:
                candidates = candidates.filter(project__name=project)
            by_name[project, task_name] = candidates.order_by("-created").first()
        task = by_name[project, task_name]
        if task is None:
            raise InvalidInput(
                f"step {name!r}: no base task named {task_name!r} in project {project!r} "
                "(run the step script once to register it)",
                step=name,
                parameter="base_task_name",
            )
        return task

    return resolve
