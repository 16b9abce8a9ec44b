"""Launching steps: resolve the overrides of ready nodes and clone and enqueue their tasks,
any number in a few statements (_clones.py), reuse a cached result, or fan a map step out
(_map.py)."""

from django.utils import timezone

from pipelines import dag, parameters

from .. import limits, secrets, services
from ..choices import NodeStatus
from ..errors import InvalidInput
from ..models import PipelineNode, Task
from . import _map, _why
from ._cache import cache_key, cached_task
from ._clones import Launch, clone_all, controller_of
from ._pass import Pass, note, set_node
from ._references import reference_lookup


def launch(
    work: Pass, nodes: list, known: dict, given: dict | None = None, local: bool = False
) -> list:
    """Clone and enqueue the tasks of pending `nodes` together: the base tasks are read in
    one query and the clones, their queue entries and the nodes written in one statement
    each, so a step releasing a thousand children costs a handful of queries.

    `given` maps a node's name to the (parameters, configuration) its controller decided
    for it (a pre_execute_callback's edits), used instead of resolving its overrides; with
    `local` the clones are drafts its controller's process runs itself.

    Returns the nodes that ended at once (a cache hit, a base task or reference missing, a
    fan-out without items).
    """
    index = work.shape.index
    bases = _base_tasks(index, nodes)
    lookup = reference_lookup(work, known)
    previous = _previous(work, nodes)
    ended, ready = [], []
    for node in nodes:
        step = index.steps[node.name]
        base = bases.get(str(step["base_task_id"]))
        if base is None:
            set_node(
                work, node, NodeStatus.FAILED, f"base task {step['base_task_id']} no longer exists"
            )
            ended.append(node)
            continue
        settled = _settle(work, node, step, lookup, (given or {}).get(node.name))
        if settled is None:
            ended.append(node)
            continue
        params, config, overrides, time_limit, queue = settled
        node.resolved_overrides = {**params, **{f"configuration:{k}": v for k, v in config.items()}}
        node.attempts += 1
        if step.get("map") is not None:
            node.decision = {"outcome": _why.RAN, "code": "fan_out", "reason": "a fan-out"}
            ended.extend(_map.expand(work, node, step, base, known))
            continue
        parts = _why.key_parts(base, overrides, config)
        node.key_inputs = _why.summary(parts, lookup.seen, from_references(step))
        caching, cached = bool(step.get("cache_executed_step")), None
        if caching:
            node.cache_key = cache_key(base, overrides, config, parts)
            work.write_nodes()  # the lookup reads nodes
            cached = cached_task(node.cache_key)
        node.decision = _why.decide(node.key_inputs, previous.get(node.name), caching, cached)
        if cached is not None:
            was, node.task = node.status, cached
            node.status, node.message = NodeStatus.CACHED, f"reused task {cached.id}"
            node.updated = timezone.now()
            note(work, node, was)
            work.unwritten[node.pk] = node
            ended.append(node)
            continue
        ready.append(Launch(node, step["name"], base, overrides, config, time_limit, queue))
    clone_all(work, ready, local=local)
    return ended


def from_references(step: dict) -> set:
    """The parameters ("Section/name") a step's overrides fill in from references."""
    return {
        key if "/" in str(key) else f"General/{key}"
        for key, value in step["parameter_override"].items()
        if dag.parse_references(value)
    }


def _previous(work: Pass, nodes: list) -> dict:
    """What each step's reason is computed against (_why.previous_nodes), read for all the
    run's steps once per process with its shape, so a launch costs no statement more: the
    earlier runs it compares with ended before this one reached its steps."""
    shape = work.shape
    if shape.previous is None and any(not node.map_step for node in nodes):
        controller = controller_of(work)
        shape.previous = _why.previous_nodes(
            controller.project_id, controller.name, shape.index.steps, work.run.pk
        )
    return shape.previous or {}


def _settle(work: Pass, node, step: dict, lookup, given):
    """(parameters, configuration, parameters as task sections, time limit, queue) for a
    node about to launch, or None after failing it with the reason it cannot. What its
    references read is left in `lookup.seen`."""
    params = config = None
    lookup.seen = {}
    if given is None:
        try:
            params = dag.resolve_overrides(step["parameter_override"], lookup)
            config = dag.resolve_overrides(step["configuration_overrides"], lookup)
        except dag.UnresolvedReference as error:
            reason = f"cannot resolve {error.ref.text}: {error.reason}"
            set_node(work, node, NodeStatus.FAILED, reason)
            return None
    try:
        if given is not None:
            params, config = _given_overrides(given, step, lookup)
        # What a reference resolved to may not fit a task parameter (an artifact's
        # metadata, a list): the step fails with the reason, every other one launches.
        overrides = services.normalize_hyperparameters(parameters.nest(params))
        services.normalize_configuration(config)  # build_clone stores it so
        time_limit = limits.time_limit("time_limit", step.get("time_limit") or None)
        queue = services.checked_queue_name(step.get("execution_queue") or work.run.default_queue)
    except (InvalidInput, ValueError, TypeError) as error:
        reason = error.message if isinstance(error, InvalidInput) else str(error)
        set_node(work, node, NodeStatus.FAILED, f"cannot launch: {reason}"[:2000])
        return None
    return params, config, overrides, time_limit, queue


def _given_overrides(given, step: dict, lookup) -> tuple[dict, dict]:
    """A controller's own values for a step: each one a scalar, as a parameter holds. A
    secret it was shown masked (resolve_step) and gave back unchanged keeps its value."""
    chosen = []
    sections = ("parameter_override", "configuration_overrides")
    for values, key_of_step in zip(given, sections, strict=True):
        values = dict(values)
        for key, value in values.items():
            if not isinstance(value, dag.OVERRIDE_VALUE_TYPES):
                raise InvalidInput(
                    f"parameter {key!r}: a value must be a string, number, boolean or null, "
                    f"not {type(value).__name__}",
                    parameter=str(key),
                )
            if value == secrets.MASK and secrets.is_sensitive(str(key).rsplit("/", 1)[-1]):
                try:
                    values[key] = dag.resolve_value(step[key_of_step].get(key), lookup)
                except dag.UnresolvedReference as error:
                    raise InvalidInput(f"cannot resolve {error.ref.text}: {error.reason}") from None
        chosen.append(values)
    return chosen[0], chosen[1]


def resolved(work: Pass, node, known: dict) -> tuple[dict, dict]:
    """What a pending node's overrides resolve to now, without launching it (what a
    pre_execute_callback is shown). UnresolvedReference says why they cannot be."""
    step = work.shape.index.steps[node.name]
    lookup = reference_lookup(work, known)
    return (
        dag.resolve_overrides(step["parameter_override"], lookup),
        dag.resolve_overrides(step["configuration_overrides"], lookup),
    )


def _base_tasks(index: dag.GraphIndex, nodes: list) -> dict:
    """The base tasks of `nodes` by id: those read with their nodes, the rest in one query.
    A node's base task is its step's (start_run sets both); one deleted since is missing."""
    ids = {str(index.steps[node.name]["base_task_id"]) for node in nodes}
    bases = {
        node.base_task_id: node.base_task
        for node in nodes
        if node.base_task_id in ids and PipelineNode.base_task.is_cached(node)
    }
    if len(bases) < len(ids):
        bases.update(
            (task.pk, task) for task in Task.objects.filter(pk__in=ids - set(bases)).order_by()
        )
    return bases
