"""A Python function as a pipeline step (ClearML's add_function_step and components).

The step's task is a draft this module's caller registers: its script is generated source
holding the module's imports (each guarded, as ClearML does), the helper functions the
function calls (and those they call) or that were named, the function itself without its
decorators, and an entry that runs it through `pipelines.step_runtime`. Its kwargs become
the task's parameters: literal values in section `kwargs`, inputs read from artifacts in
section `kwargs_artifacts` (a URL each, resolved by the server from
`${step.artifacts.NAME.url}`), so the engine clones, overrides and caches a function step
like any other.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import dag

KWARGS = "kwargs"
KWARGS_ARTIFACTS = "kwargs_artifacts"
# `${step.name}` (ClearML's shorthand for a function step's return value) and
# `${step.artifacts.name}`: the value itself, read from the artifact, not a text.
_RETURN_REF = re.compile(r"\$\{(?P<step>[A-Za-z0-9_\-]+)\.(?P<name>[A-Za-z0-9_\-]+)\}")
_ARTIFACT_REF = re.compile(r"\$\{(?P<step>[A-Za-z0-9_\-]+)\.artifacts\.(?P<name>[A-Za-z0-9_\-]+)\}")
_PLAIN = (str, int, float, bool, type(None))


@dataclasses.dataclass
class Kwargs:
    """A function step's arguments sorted by how they reach the function."""

    literals: dict = dataclasses.field(default_factory=dict)  # stored on the task as is
    overrides: dict = dataclasses.field(default_factory=dict)  # "kwargs/x": "${...}"
    objects: dict = dataclasses.field(default_factory=dict)  # uploaded, then read as artifacts
    parents: list = dataclasses.field(default_factory=list)


def artifact_url_reference(step: str, name: str) -> str:
    return f"${{{step}.artifacts.{name}.url}}"


def sort_kwargs(
    function_kwargs: Mapping[str, Any],
    returns_of: Mapping[str, Sequence[str]],
    step: str,
) -> Kwargs:
    """Sort a step's kwargs: `returns_of` names each function step's return values, so
    `${step_one.data_frame}` becomes an input read from step_one's artifact."""
    sorted_ = Kwargs()
    for key, value in function_kwargs.items():
        if isinstance(value, str) and "${" in value:
            source_value = value_reference(value, returns_of)
            if source_value is not None:
                source, name = source_value
                sorted_.overrides[f"{KWARGS_ARTIFACTS}/{key}"] = artifact_url_reference(
                    source, name
                )
                _add_parent(sorted_.parents, source)
                continue
            try:
                refs = dag.parse_references(value)
            except dag.PipelineDefinitionError as error:
                raise dag.PipelineDefinitionError(error.detail, step, f"{KWARGS}/{key}") from None
            sorted_.overrides[f"{KWARGS}/{key}"] = value
            for ref in refs:
                if ref.step is not None:
                    _add_parent(sorted_.parents, ref.step)
        elif isinstance(value, _PLAIN) or _plain_json(value):
            sorted_.literals[key] = value
        else:
            sorted_.objects[key] = value
    return sorted_


def value_reference(text: str, returns_of: Mapping[str, Sequence[str]]) -> tuple | None:
    """(step, artifact) when `text` names a value to read from a step's artifact:
    `${s.artifacts.x}` always does; `${s.x}` when x is one of step s's return values (a
    name like `id` is then a return value, not the task's id)."""
    match = _ARTIFACT_REF.fullmatch(text)
    if match is None:
        match = _RETURN_REF.fullmatch(text)
        if match is None or match.group("name") not in (returns_of.get(match.group("step")) or ()):
            return None
    return match.group("step"), match.group("name")


def _add_parent(parents: list, name: str) -> None:
    if name != "pipeline" and name not in parents:
        parents.append(name)


def _plain_json(value: Any) -> bool:
    if not isinstance(value, list | tuple | dict):
        return False
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def default_kwargs(function: Callable) -> dict:
    """The function's parameters that have defaults, as ClearML exposes them."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
        and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }


# ---------------------------------------------------------------- the generated script


def unwrapped(function: Callable) -> Callable:
    """The plain function under decorators that kept it (functools.wraps or a closure)."""
    seen = set()
    while id(function) not in seen:
        seen.add(id(function))
        inner = getattr(function, "__wrapped__", None) or getattr(function, "function", None)
        if inner is None or not callable(inner):
            break
        function = inner
    return function


def function_source(function: Callable) -> str:
    """The function's own source, dedented, without its decorators."""
    function = unwrapped(function)
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError) as error:
        raise ValueError(
            f"cannot read the source of {function.__qualname__}: a function step needs a "
            "function defined in a file"
        ) from error
    tree = ast.parse(source)
    definition = next(
        node for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )
    lines = source.splitlines()
    return "\n".join(lines[definition.lineno - 1 :]).rstrip() + "\n"


def helper_functions(function: Callable, named: Sequence[Callable] = ()) -> list[Callable]:
    """The module-level functions of `function`'s module that it calls (and those call),
    then any others `named`, each once, in the order they are needed."""
    function = unwrapped(function)
    found: dict[str, Callable] = {}
    stack = [function, *[unwrapped(helper) for helper in named]]
    while stack:
        current = stack.pop()
        for name in _global_names(current.__code__):
            candidate = current.__globals__.get(name)
            candidate = unwrapped(candidate) if callable(candidate) else None
            if (
                isinstance(candidate, types.FunctionType)
                and candidate is not function
                and candidate.__module__ == current.__module__
                and candidate.__name__ not in found
            ):
                found[candidate.__name__] = candidate
                stack.append(candidate)
    for helper in named:
        plain = unwrapped(helper)
        found.setdefault(plain.__name__, plain)
    return list(found.values())


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested functions and comprehensions
            names |= _global_names(const)
    return names


def module_imports(function: Callable) -> tuple[list[str], list[str]]:
    """(__future__ imports, other top-level imports) of `function`'s module."""
    module = inspect.getmodule(unwrapped(function))
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return [], []
    future, imports = [], []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            future.append(ast.unparse(node))
        elif isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
            imports.append(ast.unparse(node))
    return future, imports


def generate_script(
    function: Callable,
    returns: Sequence[str],
    helpers: Sequence[Callable] = (),
    allow_pickle: bool = False,
) -> str:
    """The step's whole script: imports, helpers, the function, and its entry."""
    plain = unwrapped(function)
    future, imports = module_imports(plain)
    where = inspect.getsourcefile(plain) or "?"
    parts = [
        f"# The function step {plain.__name__!r}, made by pipelines from "
        f"{where.rsplit('/', 1)[-1]}: the module's imports, the functions it calls, the",
        "# function, and the entry that calls it with the task's parameters and stores what",
        "# it returns as artifacts.",
        *future,
        "",
    ]
    for statement in imports:
        # As ClearML does: a module the step does not need may be missing where it runs.
        guarded = textwrap.indent(statement, "    ")
        parts.append(f"try:\n{guarded}\nexcept ImportError as error:\n    print(error)")
    for helper in helpers:
        parts += ["", "", function_source(helper).rstrip()]
    parts += ["", "", function_source(plain).rstrip(), "", ""]
    parts += [
        'if __name__ == "__main__":',
        "    from pipelines.step_runtime import run_function_step",
        "",
        f"    run_function_step({plain.__name__}, returns={list(returns)!r}, "
        f"allow_pickle={bool(allow_pickle)!r})",
        "",
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------- registering the step


def register(
    client,
    controller,
    name: str,
    function: Callable,
    kwargs: dict,
    returns: list,
    *,
    returns_of: Mapping[str, Sequence[str]],
    allow_pickle: bool,
    project_name: str | None = None,
    task_name: str | None = None,
    task_type: str | None = None,
    packages=None,
    repo: str | None = None,
    helper_functions: Sequence[Callable] | None = None,
    tags: Sequence[str] | None = None,
    **_ignored: Any,
) -> dict:
    """Register a function step's draft task (the base task the engine clones) for
    `controller`, and begin its step's definition: {name, base_task_id, parents,
    parameter_override, function}. ClearML's container options (docker, docker_args, ...)
    are accepted and ignored: steps run in their worker's environment."""
    from . import parameters

    try:
        sorted_ = sort_kwargs(kwargs, returns_of, name)
    except dag.PipelineDefinitionError as error:
        raise ValueError(str(error)) from None
    inputs = {}
    for key, value in sorted_.objects.items():
        # As ClearML does: a value that is no parameter travels as the controller's
        # artifact, read by the step like any other input.
        artifact = f"{name}.{key}"
        controller.upload_artifact(artifact, value)
        inputs[key] = controller.artifacts[artifact].url
    script = {
        "entry_point": f"{name}.py",
        "working_dir": ".",
        "code": generate_script(
            function,
            returns,
            helper_functions_of(function, helper_functions),
            allow_pickle=allow_pickle,
        ),
        "requirements": requirements(packages),
        "binary": "python3",
    }
    if repo:
        script["repository"] = repo
    draft = client.post(
        "tasks/",
        {
            "project_name": project_name or controller.get_project_name(),
            "name": task_name or name,
            "type": str(task_type or "data_processing"),
            "script": script,
            "hyperparameters": {
                KWARGS: {k: parameters.encode(v) for k, v in sorted_.literals.items()},
                KWARGS_ARTIFACTS: {k: parameters.encode(v) for k, v in inputs.items()},
            },
            "tags": list(tags or []),
            "parent": controller.id,
        },
    )
    # Scalar kwargs are overrides too, so a pre_execute_callback sees (and may edit) every
    # kwarg as ClearML shows them; lists and dicts stay on the draft only.
    scalars = {f"{KWARGS}/{k}": v for k, v in sorted_.literals.items() if isinstance(v, _PLAIN)}
    return {
        "name": name,
        "base_task_id": draft["id"],
        "parents": sorted_.parents,
        "parameter_override": {**scalars, **sorted_.overrides},
        "function": {
            "name": unwrapped(function).__name__,
            "kwargs": {k: _shown(v) for k, v in kwargs.items()},
            "returns": list(returns),
            # The order the call is shown in (a database may not keep the kwargs' order).
            "parameters": list(inspect.signature(unwrapped(function)).parameters),
        },
    }


def helper_functions_of(function: Callable, named) -> list[Callable]:
    return helper_functions(function, named or ())


def _shown(value: Any) -> Any:
    """A kwarg as the run page shows it: plain values as they are, others by their repr."""
    if isinstance(value, _PLAIN):
        return value
    try:
        return repr(value)[:200]
    except Exception:  # noqa: BLE001 - a broken __repr__ must not stop the definition
        return f"<{type(value).__qualname__}>"


def requirements(packages) -> list[str]:
    """`packages` as ClearML takes it: a list of requirements, or a requirements file."""
    if not packages:
        return []
    if isinstance(packages, str):
        try:
            with open(packages) as listed:
                return [line.strip() for line in listed if line.strip()]
        except OSError:
            return [packages]
    return [str(package) for package in packages]


def first_free_parameter(function: Callable, given: Mapping[str, Any]) -> str:
    """The parameter each item of a map is passed as: the first one without a default,
    else the first one, that `given` does not set."""
    free = [
        parameter
        for name, parameter in inspect.signature(unwrapped(function)).parameters.items()
        if name not in given
    ]
    for parameter in free:
        if parameter.default is inspect.Parameter.empty:
            return parameter.name
    if free:
        return free[0].name
    raise ValueError(f"{unwrapped(function).__name__} has no parameter left for each item")
