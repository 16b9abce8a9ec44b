"""Pure DAG logic for pipelines of steps.

The server validates pipeline definitions when they are stored and the engine decides what
to do next each time a step changes state. Both must agree on the same rules, so the rules
live here, free of I/O and of any framework, where they can be tested in isolation and
benchmarked on large graphs.

A step is a JSON-able dict (see ``validate_pipeline``); a pipeline is a list of steps whose
``parents`` lists form a directed acyclic graph with edges parent -> child.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

NODE_STATUSES = frozenset(
    {"pending", "queued", "running", "completed", "cached", "failed", "skipped", "aborted"}
)
NODE_DONE_OK = frozenset({"completed", "cached"})
NODE_TERMINAL = frozenset({"completed", "cached", "failed", "skipped", "aborted"})

STEP_NAME_RE = re.compile(r"[A-Za-z0-9_\-]+")
STEP_NAME_MAX = 255
# What a parameter override may be: a task parameter is one value, kept as text.
OVERRIDE_VALUE_TYPES = (str, int, float, bool, type(None))
# ``${pipeline.X}`` would be ambiguous if a step could be called "pipeline".
RESERVED_STEP_NAMES = frozenset({"pipeline"})

_NAME = r"[A-Za-z0-9_\-]+"
_KEY = r"[A-Za-z0-9_\-./]+"
REFERENCE_RE = re.compile(
    r"\$\{(?:"
    rf"pipeline\.(?P<pipeline>{_KEY})"
    rf"|(?P<step>{_NAME})\.(?:"
    r"(?P<id>id)"
    r"|(?P<task_field>status|name)"
    rf"|artifacts\.(?P<artifact>{_NAME})\.(?P<artifact_field>[A-Za-z0-9_]+)"
    rf"|parameters\.(?P<parameter>{_KEY})"
    r"))\}"
)

DEFAULT_CONTINUE_BEHAVIOUR = {
    "continue_on_fail": False,
    "continue_on_abort": False,
    "skip_children_on_fail": True,
    "skip_children_on_abort": True,
}


class PipelineDefinitionError(ValueError):
    """A pipeline that can never run correctly, reported where the user can fix it.

    The step and parameter are kept as attributes so an API can point at the offending
    field, and are repeated in the message so a log line alone is enough to find it.
    """

    def __init__(self, detail: str, step: str | None = None, parameter: str | None = None):
        self.detail = detail
        self.step = step
        self.parameter = parameter
        where = []
        if step is not None:
            where.append(f"step {step!r}")
        if parameter is not None:
            where.append(f"parameter {parameter!r}")
        super().__init__(f"{', '.join(where)}: {detail}" if where else detail)

    def with_context(self, step: str | None, parameter: str | None) -> PipelineDefinitionError:
        """Parsing knows nothing of where a value came from; callers add it afterwards."""
        return PipelineDefinitionError(
            self.detail,
            self.step if self.step is not None else step,
            self.parameter if self.parameter is not None else parameter,
        )


@dataclasses.dataclass(frozen=True)
class Reference:
    """One ``${...}`` placeholder; frozen so it can key a cache of looked-up values.

    ``kind`` is one of "id", "artifact", "parameter", "task_field", "pipeline".
    ``step`` is None for pipeline parameters; ``field`` is "id", the artifact field, or the
    task field; ``name`` is the artifact name, the parameter key or the pipeline parameter.
    """

    text: str
    kind: str
    step: str | None
    field: str | None
    name: str | None


class UnresolvedReference(LookupError):
    """Raised by the engine's lookup so a step fails with a reason instead of a bad value."""

    def __init__(self, ref: Reference, reason: str):
        self.ref = ref
        self.reason = reason
        super().__init__(f"cannot resolve {ref.text}: {reason}")


@dataclasses.dataclass
class Actions:
    """What the engine should do now; both lists are in topological order."""

    launch: list[str] = dataclasses.field(default_factory=list)
    skip: list[str] = dataclasses.field(default_factory=list)


# --------------------------------------------------------------------------- references


def _to_reference(match: re.Match[str]) -> Reference:
    text = match.group(0)
    if match.group("pipeline") is not None:
        return Reference(text, "pipeline", None, None, match.group("pipeline"))
    step = match.group("step")
    if match.group("id") is not None:
        return Reference(text, "id", step, "id", None)
    if match.group("task_field") is not None:
        return Reference(text, "task_field", step, match.group("task_field"), None)
    if match.group("artifact") is not None:
        return Reference(
            text, "artifact", step, match.group("artifact_field"), match.group("artifact")
        )
    return Reference(text, "parameter", step, None, match.group("parameter"))


def _scan(value: str) -> list[tuple[int, int, Reference]]:
    """Every ``${`` must start a valid reference: a typo should fail at definition time,
    not silently reach a training script as literal text."""
    found: list[tuple[int, int, Reference]] = []
    pos = value.find("${")
    while pos != -1:
        match = REFERENCE_RE.match(value, pos)
        if match is None:
            end = value.find("}", pos)
            fragment = value[pos:] if end == -1 else value[pos : end + 1]
            raise PipelineDefinitionError(f"malformed reference {fragment!r} in {value!r}")
        found.append((match.start(), match.end(), _to_reference(match)))
        pos = value.find("${", match.end())
    return found


def parse_references(value: Any) -> list[Reference]:
    """References in one override value; non-strings are literal values and have none."""
    if not isinstance(value, str) or "${" not in value:
        return []
    return [ref for _, _, ref in _scan(value)]


def resolve_value(value: Any, lookup: Callable[[Reference], Any]) -> Any:
    """Substitute references so a step receives concrete values.

    A value that is exactly one reference keeps the looked-up type (a step may expect an
    int or a list); references embedded in text can only be spliced in as strings.
    """
    if not isinstance(value, str) or "${" not in value:
        return value
    found = _scan(value)
    if len(found) == 1 and found[0][0] == 0 and found[0][1] == len(value):
        return lookup(found[0][2])
    cache: dict[Reference, str] = {}
    parts: list[str] = []
    last = 0
    for start, end, ref in found:
        if ref not in cache:
            cache[ref] = str(lookup(ref))
        parts.append(value[last:start])
        parts.append(cache[ref])
        last = end
    parts.append(value[last:])
    return "".join(parts)


def resolve_overrides(
    overrides: Mapping[str, Any] | None, lookup: Callable[[Reference], Any]
) -> dict[str, Any]:
    """Resolve a whole override mapping at launch time; keys are never templated."""
    return {key: resolve_value(value, lookup) for key, value in (overrides or {}).items()}


# --------------------------------------------------------------------------- graph


@dataclasses.dataclass
class _Graph:
    names: list[str]
    steps: dict[str, Mapping[str, Any]]
    parents: dict[str, list[str]]
    children: dict[str, list[str]]


def _build_graph(steps: Sequence[Mapping[str, Any]]) -> _Graph:
    """Shape checks shared by validation and the engine helpers, which must not guess
    around a broken definition either."""
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence):
        raise PipelineDefinitionError("steps must be a list of step definitions")
    by_name: dict[str, Mapping[str, Any]] = {}
    for position, step in enumerate(steps):
        if not isinstance(step, Mapping):
            raise PipelineDefinitionError(f"step #{position} is not a mapping")
        name = step.get("name")
        if not isinstance(name, str) or not name:
            raise PipelineDefinitionError(f"step #{position} has an empty name")
        if len(name) > STEP_NAME_MAX:
            raise PipelineDefinitionError(
                f"step name is longer than {STEP_NAME_MAX} characters", step=name[:40] + "..."
            )
        if not STEP_NAME_RE.fullmatch(name):
            raise PipelineDefinitionError(
                "invalid step name: only letters, digits, '_' and '-' are allowed", step=name
            )
        if name in RESERVED_STEP_NAMES:
            raise PipelineDefinitionError(
                f"{name!r} is reserved for ${{{name}.*}} references", step=name
            )
        if name in by_name:
            raise PipelineDefinitionError("duplicate step name", step=name)
        by_name[name] = step
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {name: [] for name in by_name}
    for name, step in by_name.items():
        raw = step.get("parents") or []
        if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
            raise PipelineDefinitionError("parents must be a list of step names", step=name)
        unique: dict[str, None] = {}
        for parent in raw:
            if not isinstance(parent, str) or parent not in by_name:
                raise PipelineDefinitionError(f"unknown parent {parent!r}", step=name)
            if parent not in unique:
                unique[parent] = None
                children[parent].append(name)
        parents[name] = list(unique)
    return _Graph(list(by_name), by_name, parents, children)


def _find_cycle(graph: _Graph, remaining: set[str]) -> list[str]:
    """Every node Kahn's algorithm leaves behind still has an unprocessed parent, so
    walking parents inside the leftovers must revisit a node: that loop is a cycle."""
    node = next(name for name in graph.names if name in remaining)
    path: list[str] = []
    seen_at: dict[str, int] = {}
    while node not in seen_at:
        seen_at[node] = len(path)
        path.append(node)
        node = next(parent for parent in graph.parents[node] if parent in remaining)
    cycle = path[seen_at[node] :]
    cycle.reverse()  # walked child -> parent; report parent -> child
    order = {name: i for i, name in enumerate(graph.names)}
    first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
    cycle = cycle[first:] + cycle[:first]
    return [*cycle, cycle[0]]


def _topological_order(graph: _Graph) -> list[str]:
    """Kahn's algorithm; among ready steps the earliest defined goes first, so a listing
    that is already in dependency order comes back unchanged (O((V+E) log V))."""
    index = {name: i for i, name in enumerate(graph.names)}
    waiting = {name: len(graph.parents[name]) for name in graph.names}
    ready = [i for i, name in enumerate(graph.names) if not waiting[name]]  # sorted: a heap
    order: list[str] = []
    while ready:
        name = graph.names[heapq.heappop(ready)]
        order.append(name)
        for child in graph.children[name]:
            waiting[child] -= 1
            if not waiting[child]:
                heapq.heappush(ready, index[child])
    if len(order) < len(graph.names):
        remaining = {name for name, count in waiting.items() if count}
        cycle = _find_cycle(graph, remaining)
        raise PipelineDefinitionError(f"cycle: {' -> '.join(cycle)}", step=cycle[0])
    return order


def _override_items(step: Mapping[str, Any], name: str) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key in ("parameter_override", "configuration_overrides"):
        mapping = step.get(key)
        if mapping is None:
            continue
        if not isinstance(mapping, Mapping):
            raise PipelineDefinitionError(f"{key} must be a mapping", step=name)
        items.extend((str(k), v) for k, v in mapping.items())
    fan_out = step.get("map")
    if isinstance(fan_out, Mapping) and isinstance(fan_out.get("items"), str):
        items.append(("map.items", fan_out["items"]))  # a fan-out's list comes from an ancestor
    return items


def _ancestor_bits(graph: _Graph, order: list[str], position: dict[str, int]) -> dict[str, int]:
    """Ancestor sets as int bitsets, built in one pass in topological order. Only needed
    when a step references a non-parent; cheap even for a 5,000-step chain (~3 MB)."""
    bits: dict[str, int] = {}
    for name in order:
        acc = 0
        for parent in graph.parents[name]:
            acc |= bits[parent] | (1 << position[parent])
        bits[name] = acc
    return bits


def _check_references(
    graph: _Graph, order: list[str], pipeline_parameters: Mapping[str, Any] | None
) -> None:
    """A step can only read outputs of steps guaranteed to have finished before it starts,
    i.e. its ancestors; anything else would race or never resolve."""
    position = {name: i for i, name in enumerate(order)}
    bits: dict[str, int] | None = None
    for name in graph.names:
        parent_set: set[str] | None = None
        for key, value in _override_items(graph.steps[name], name):
            try:
                refs = parse_references(value)
            except PipelineDefinitionError as exc:
                raise exc.with_context(name, key) from None
            for ref in refs:
                if ref.kind == "pipeline":
                    if pipeline_parameters is not None and ref.name not in pipeline_parameters:
                        raise PipelineDefinitionError(
                            f"reference {ref.text} to unknown pipeline parameter {ref.name!r}",
                            name,
                            key,
                        )
                    continue
                target = ref.step
                if target not in graph.steps:
                    raise PipelineDefinitionError(
                        f"reference to step {target!r} which does not exist (in {ref.text})",
                        name,
                        key,
                    )
                if parent_set is None:
                    parent_set = set(graph.parents[name])
                if target in parent_set:
                    continue
                is_ancestor = False
                if position[target] < position[name]:
                    if bits is None:
                        bits = _ancestor_bits(graph, order, position)
                    is_ancestor = bool(bits[name] >> position[target] & 1)
                if not is_ancestor:
                    raise PipelineDefinitionError(
                        f"reference to step {target!r} which is not an ancestor (in {ref.text})",
                        name,
                        key,
                    )


def validate_pipeline(
    steps: Sequence[Mapping[str, Any]], pipeline_parameters: Mapping[str, Any] | None = None
) -> list[str]:
    """Reject a definition before anything is launched, and return the launch order.

    ``pipeline_parameters=None`` means the parameters are not known yet, so
    ``${pipeline.X}`` references are only checked for syntax.
    """
    graph = _build_graph(steps)
    order = _topological_order(graph)
    _check_override_values(graph)
    _check_references(graph, order, pipeline_parameters)
    return order


def _check_override_values(graph: _Graph) -> None:
    """A parameter override is one value (a string, number, boolean or null): a task
    parameter holds nothing else, so a dict or list could never be launched."""
    for name in graph.names:
        mapping = graph.steps[name].get("parameter_override")
        if not isinstance(mapping, Mapping):
            continue  # _override_items says why
        for key, value in mapping.items():
            if not isinstance(value, OVERRIDE_VALUE_TYPES):
                raise PipelineDefinitionError(
                    f"override value must be a string, number, boolean or null, "
                    f"not {type(value).__name__}",
                    name,
                    str(key),
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise PipelineDefinitionError(
                    "override value must be a finite number", name, str(key)
                )


def ancestors(steps: Sequence[Mapping[str, Any]], name: str) -> set[str]:
    """Steps that must finish before ``name`` may start (iterative: chains can be deep)."""
    graph = _build_graph(steps)
    if name not in graph.steps:
        raise PipelineDefinitionError("unknown step", step=name)
    found: set[str] = set()
    queue = deque(graph.parents[name])
    while queue:
        node = queue.popleft()
        if node not in found:
            found.add(node)
            queue.extend(graph.parents[node])
    return found


# --------------------------------------------------------------------------- node states


def effective_continue_behaviour(step: Mapping[str, Any]) -> dict[str, bool]:
    """Merge the legacy ``continue_on_fail`` flag with ``continue_behaviour``.

    ``continue_on_fail=True`` alone means the pipeline tolerates this step failing and its
    children still run. A ``continue_behaviour`` dict refines that: its keys win, and keys
    it omits take the ClearML defaults (children are skipped unless told otherwise).
    """
    legacy = bool(step.get("continue_on_fail"))
    behaviour = step.get("continue_behaviour")
    if behaviour is None:
        return {
            "continue_on_fail": legacy,
            "continue_on_abort": False,
            "skip_children_on_fail": not legacy,
            "skip_children_on_abort": True,
        }
    if not isinstance(behaviour, Mapping):
        raise PipelineDefinitionError(
            "continue_behaviour must be a mapping or null", step=step.get("name")
        )
    merged = dict(DEFAULT_CONTINUE_BEHAVIOUR)
    merged["continue_on_fail"] = legacy
    merged.update({key: bool(behaviour[key]) for key in merged if key in behaviour})
    return merged


def _children_may_run(step: Mapping[str, Any], status: str) -> bool:
    if status in NODE_DONE_OK:
        return True
    if status == "failed":
        rules = effective_continue_behaviour(step)
        return rules["continue_on_fail"] and not rules["skip_children_on_fail"]
    if status == "aborted":
        rules = effective_continue_behaviour(step)
        return rules["continue_on_abort"] and not rules["skip_children_on_abort"]
    return False


def _fails_pipeline(step: Mapping[str, Any], status: str) -> bool:
    if status == "failed":
        return not effective_continue_behaviour(step)["continue_on_fail"]
    if status == "aborted":
        return not effective_continue_behaviour(step)["continue_on_abort"]
    return False


def _statuses(graph: _Graph, states: Mapping[str, str]) -> dict[str, str]:
    """A step the engine has not recorded yet is pending; an unknown word is a bug."""
    statuses: dict[str, str] = {}
    for name in graph.names:
        status = states.get(name, "pending")
        if status not in NODE_STATUSES:
            raise ValueError(f"step {name!r}: unknown node status {status!r}")
        statuses[name] = status
    return statuses


def next_actions(steps: Sequence[Mapping[str, Any]], states: Mapping[str, str]) -> Actions:
    """Pending steps to launch now, and pending steps that can never run.

    Skips propagate within one call (a step skipped here skips its pending descendants),
    so the engine needs no extra round per level of the graph.
    """
    graph = _build_graph(steps)
    statuses = _statuses(graph, states)
    actions = Actions()
    for name in _topological_order(graph):
        if statuses[name] != "pending":
            continue
        ready = True
        blocked = False
        for parent in graph.parents[name]:
            status = statuses[parent]
            if _children_may_run(graph.steps[parent], status):
                continue
            if status in NODE_TERMINAL:
                blocked = True
                break
            ready = False
        if blocked:
            actions.skip.append(name)
            statuses[name] = "skipped"
        elif ready:
            actions.launch.append(name)
    return actions


def should_abort(
    steps: Sequence[Mapping[str, Any]], states: Mapping[str, str], abort_on_failure: bool
) -> bool:
    """With abort_on_failure, one intolerable failure (or abort) ends the whole run."""
    if not abort_on_failure:
        return False
    graph = _build_graph(steps)
    statuses = _statuses(graph, states)
    return any(_fails_pipeline(graph.steps[name], statuses[name]) for name in graph.names)


def pipeline_outcome(
    steps: Sequence[Mapping[str, Any]], states: Mapping[str, str], abort_on_failure: bool
) -> str | None:
    """The run's final status, or None while it is still going.

    A forced abort is already a failure, even before the engine has stopped the steps
    still running. Tolerated failures (continue_on_fail / continue_on_abort) and skips
    do not fail the run.
    """
    graph = _build_graph(steps)
    statuses = _statuses(graph, states)
    failed = any(_fails_pipeline(graph.steps[name], statuses[name]) for name in graph.names)
    if abort_on_failure and failed:
        return "failed"
    if any(status not in NODE_TERMINAL for status in statuses.values()):
        return None
    return "failed" if failed else "completed"


# ---------------------------------------------------------------- incremental decisions


@dataclasses.dataclass(frozen=True)
class GraphIndex:
    """Parents, children and steps by name, built once per run and reused per event."""

    steps: dict[str, Mapping[str, Any]]
    parents: dict[str, tuple[str, ...]]
    children: dict[str, tuple[str, ...]]


def index_graph(steps: Sequence[Mapping[str, Any]]) -> GraphIndex:
    children: dict[str, list[str]] = {step["name"]: [] for step in steps}
    for step in steps:
        for parent in step.get("parents") or ():
            children.setdefault(parent, []).append(step["name"])
    return GraphIndex(
        steps={step["name"]: step for step in steps},
        parents={step["name"]: tuple(step.get("parents") or ()) for step in steps},
        children={name: tuple(names) for name, names in children.items()},
    )


def decide_step(index: GraphIndex, name: str, states: Mapping[str, str]) -> str:
    """'launch', 'skip' or 'wait' for one pending step, from its parents' states only.

    The same rule next_actions() applies to the whole graph, for one step, so the engine
    can react to a single state change without looking at every node.
    """
    ready = True
    for parent in index.parents[name]:
        status = states.get(parent, "pending")
        if _children_may_run(index.steps[parent], status):
            continue
        if status in NODE_TERMINAL:
            return "skip"
        ready = False
    return "launch" if ready else "wait"


def descendants(index: GraphIndex, name: str) -> list[str]:
    """Every step below `name`, breadth first, each once."""
    return descendants_of(index, [name])


def descendants_of(index: GraphIndex, names: Sequence[str]) -> list[str]:
    """Every step below any of `names`, each once: O(size of the union), however much the
    subtrees overlap (a fan-out whose root failed skips each child's subtree at once)."""
    seen: set[str] = set()
    order: list[str] = []
    frontier = [child for name in names for child in index.children.get(name, ())]
    while frontier:
        current = frontier.pop()
        if current in seen:
            continue
        seen.add(current)
        order.append(current)
        frontier.extend(index.children.get(current, ()))
    return order


def fails_pipeline(step: Mapping[str, Any], status: str) -> bool:
    """True when this step ending in `status` makes the whole pipeline fail."""
    return _fails_pipeline(step, status)
