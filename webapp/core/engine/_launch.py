"""Launching steps: clone and enqueue the tasks of ready nodes, any number in a few
statements, or reuse a cached result."""

from django.utils import timezone

from pipelines import dag, parameters

from .. import limits, services
from ..choices import NodeStatus
from ..errors import InvalidInput
from ..models import PipelineNode, Task
from ._cache import cache_key, cached_task
from ._pass import Pass, note, set_node
from ._references import reference_lookup


def launch(work: Pass, nodes: list, known: dict) -> list:
    """Clone and enqueue the tasks of pending `nodes` together: the base tasks are read in
    one query and the clones, their queue entries and the nodes written in one statement
    each, so a step releasing a thousand children costs a handful of queries.

    Returns the nodes that ended at once (a cache hit, a base task or reference missing).
    """
    run, index = work.run, work.shape.index
    bases = _base_tasks(index, nodes)
    lookup = reference_lookup(work, known)
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
        try:
            params = dag.resolve_overrides(step["parameter_override"], lookup)
            config = dag.resolve_overrides(step["configuration_overrides"], lookup)
        except dag.UnresolvedReference as error:
            set_node(
                work, node, NodeStatus.FAILED, f"cannot resolve {error.ref.text}: {error.reason}"
            )
            ended.append(node)
            continue
        try:
            # What a reference resolved to may not fit a task parameter (an artifact's
            # metadata, a list): the step fails with the reason, every other one launches.
            overrides = services.normalize_hyperparameters(parameters.nest(params))
            services.normalize_configuration(config)  # build_clone stores it so
            time_limit = limits.time_limit("time_limit", step.get("time_limit") or None)
            queue = services.checked_queue_name(step.get("execution_queue") or run.default_queue)
        except (InvalidInput, ValueError, TypeError) as error:
            reason = error.message if isinstance(error, InvalidInput) else str(error)
            set_node(work, node, NodeStatus.FAILED, f"cannot launch: {reason}"[:2000])
            ended.append(node)
            continue
        node.resolved_overrides = {**params, **{f"configuration:{k}": v for k, v in config.items()}}
        node.attempts += 1
        if step.get("cache_executed_step"):
            node.cache_key = cache_key(base, overrides, config)
            work.write_nodes()  # the lookup reads nodes
            cached = cached_task(node.cache_key)
            if cached is not None:
                was, node.task = node.status, cached
                node.status, node.message = NodeStatus.CACHED, f"reused task {cached.id}"
                node.updated = timezone.now()
                note(work, node, was)
                ended.append(node)
                continue
        ready.append((node, step, base, overrides, config, time_limit, queue))
    written = [node for node in ended if node.status == NodeStatus.CACHED]
    if ready:
        controller = _controller(work)
        clones, queues = [], []
        for _node, step, base, overrides, config, time_limit, queue in ready:
            clones.append(
                services.build_clone(
                    base,
                    user=controller.created_by,
                    project=controller.project,
                    name=step["name"],
                    parent=controller,
                    hyperparameters=overrides,
                    configuration=config,
                    time_limit=time_limit,
                )
            )
            queues.append(queue)
        services.enqueue_clones(clones, queues, _queues(work, queues))
        now = timezone.now()
        for (node, *_), task, queue in zip(ready, clones, queues, strict=True):
            was = node.status
            node.task, node.status, node.message, node.updated = (
                task,
                NodeStatus.QUEUED,
                f"enqueued on {queue}",
                now,
            )
            note(work, node, was)
            written.append(node)
    work.unwritten.update((node.pk, node) for node in written)
    return ended


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


def _controller(work: Pass) -> Task:
    """The clones' parent, project and owner, which never change during a run."""
    shape = work.shape
    if shape.controller is None:
        shape.controller = Task.objects.select_related("project", "created_by").get(
            pk=work.run.controller_id
        )
    return shape.controller


def _queues(work: Pass, names: list) -> dict:
    known = work.shape.queues
    missing = set(names) - set(known)
    if missing:
        known.update(services.queues_named(missing))
    return known
