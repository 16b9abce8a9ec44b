"""The engine's working state and how it launches steps.

A run's definition is decoded once per process (`shape_of`); a `Pass` is one locked visit
of a run, which writes the run row once at its end; `launch` clones and enqueues any number
of ready steps in a few statements.
"""

import copy
import dataclasses
import hashlib
import json

from django.db import connection
from django.utils import timezone

from pipelines import dag, parameters

from . import engine_plot, limits, services
from .choices import NODE_TERMINAL, ArtifactState, NodeStatus, PipelineStatus, TaskStatus
from .errors import InvalidInput
from .models import Artifact, PipelineNode, PipelineRun, Task


@dataclasses.dataclass
class Shape:
    """What never changes after start_run: the steps, their graph and the parameters."""

    steps: list
    index: dag.GraphIndex
    parameters: dict
    layout: object = None  # the figure's PipelineLayout, built by the first plot
    controller: Task | None = None  # loaded by the first launch
    # The queues its steps were enqueued on, by name. A queue row never changes; should one
    # be deleted meanwhile, the insert that names it fails and advance() forgets the shape.
    queues: dict = dataclasses.field(default_factory=dict)


SHAPES: dict[str, Shape] = {}
SHAPES_MAX = 256


def shape_of(run: PipelineRun) -> Shape:
    """Decoded once per process: the engine reads the run row with its definition deferred,
    since decoding a 5,000-step definition would cost more than the rest of an event."""
    shape = SHAPES.get(run.pk)
    if shape is None:
        if "steps" in run.__dict__ and "parameters" in run.__dict__:
            steps, params = run.steps, run.parameters
        else:
            steps, params = (
                PipelineRun.objects.filter(pk=run.pk).values_list("steps", "parameters").get()
            )
        if len(SHAPES) >= SHAPES_MAX:
            SHAPES.pop(next(iter(SHAPES)))
        shape = SHAPES[run.pk] = Shape(steps, dag.index_graph(steps), params or {})
    return shape


def locked(run_id: str) -> PipelineRun | None:
    runs = PipelineRun.objects.select_for_update().defer("steps", "parameters")
    return one(runs.filter(pk=run_id))


def one(queryset):
    """The row a filter on a unique key finds, or None; `first()` would add an ORDER BY."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


def run_nodes(run: PipelineRun):
    """The run's nodes, unordered: ordering by run would join the run. The manager rather
    than `run.nodes`, whose related manager costs more to build than the query."""
    return PipelineNode.objects.filter(run_id=run.pk).order_by()


def nodes_with_tasks(run: PipelineRun):
    return run_nodes(run).select_related("task")


TRACKED = ("status", "completed", "open_nodes", "plot_due", "plot_updated")


class Pass:
    """One locked visit of a run. Changes to the run row are written once, at the end; the
    nodes it changes are written together, before anything reads them back (`write_nodes`),
    so a finish that launches the next step updates both nodes in one statement."""

    def __init__(self, run: PipelineRun, now=None):
        self.run = run
        self.shape = shape_of(run)
        self.now = now or timezone.now()
        self.changed = False
        self.fatal = False  # a step failed in a way that fails the whole run
        self.before = {field: getattr(run, field) for field in TRACKED}
        self.unwritten: dict = {}  # changed nodes by primary key

    def write_nodes(self, before_reading=None) -> None:
        """Write the changed nodes before the database is asked about nodes: all of them, or
        with `before_reading` (the names about to be read) only if one of those changed."""
        if not self.unwritten:
            return
        if before_reading is not None and not any(
            node.name in before_reading for node in self.unwritten.values()
        ):
            return
        _save_nodes(list(self.unwritten.values()), NODE_FIELDS)
        self.unwritten.clear()

    def flush(self) -> None:
        self.write_nodes()
        run = self.run
        if run.status == PipelineStatus.RUNNING:
            engine_plot.request(run, self.now, self.changed)
        fields = {f: getattr(run, f) for f in TRACKED if getattr(run, f) != self.before[f]}
        if fields:
            PipelineRun.objects.filter(pk=run.pk).update(**fields)
            self.before.update(fields)


class Nodes(dict):
    """Nodes by name, loaded from the database on first use (reference lookups)."""

    def __init__(self, work: Pass, preloaded=()):
        super().__init__((node.name, node) for node in preloaded)
        self.work = work

    def __missing__(self, name):
        self.work.write_nodes(before_reading=(name,))
        node = one(nodes_with_tasks(self.work.run).filter(name=name))
        self[name] = node
        return node

    def get(self, name, default=None):
        node = self[name]
        return default if node is None else node


def note(work: Pass, node: PipelineNode, was: str) -> None:
    """Keep the run's count of open nodes and remember what the end of the pass must do."""
    work.run.open_nodes += (node.status not in NODE_TERMINAL) - (was not in NODE_TERMINAL)
    work.changed = True
    if node.status in (NodeStatus.FAILED, NodeStatus.ABORTED) and dag.fails_pipeline(
        work.shape.index.steps[node.name], node.status
    ):
        work.fatal = True


def set_node(work: Pass, node: PipelineNode, status: str, message: str = "") -> None:
    was = node.status
    node.status = status
    node.message = message or ""
    node.updated = timezone.now()
    work.unwritten[node.pk] = node
    note(work, node, was)


def launch(work: Pass, nodes: list, known: dict) -> list:
    """Clone and enqueue the tasks of pending `nodes` together: the base tasks are read in
    one query and the clones, their queue entries and the nodes written in one statement
    each, so a step releasing a thousand children costs a handful of queries.

    Returns the nodes that ended at once (a cache hit, a base task or reference missing).
    """
    run, index = work.run, work.shape.index
    bases = _base_tasks(index, nodes)
    lookup = _reference_lookup(work, known)
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
            node.cache_key = _cache_key(base, overrides, config)
            work.write_nodes()  # the lookup reads nodes
            cached = _cached_task(node.cache_key)
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


# Every field the engine changes on a node, so that one statement writes any of them.
NODE_FIELDS = (
    "task",
    "status",
    "message",
    "updated",
    "resolved_overrides",
    "cache_key",
    "attempts",
)


def _save_nodes(nodes: list, fields) -> None:
    """One UPDATE statement run for each node (executemany): Django's bulk_update builds a
    CASE expression per row and field, which costs more than the rows it saves."""
    if not nodes:
        return
    meta, quote = PipelineNode._meta, connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    # Only names from the model's metadata go into the text; the values are parameters.
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608
        quote(meta.db_table),
        ", ".join(f"{quote(column.column)} = %s" for column in columns),
        quote(meta.pk.column),
    )
    rows = [
        [column.get_db_prep_save(getattr(node, column.attname), connection) for column in columns]
        + [node.pk]
        for node in nodes
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


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


def forget_shape(run_id: str) -> None:
    SHAPES.pop(run_id, None)


def _reference_lookup(work: Pass, nodes: dict):
    artifacts: dict = {}  # children of one step often read the same artifact

    def lookup(ref: dag.Reference):
        if ref.kind == "pipeline":
            if ref.name not in work.shape.parameters:
                raise dag.UnresolvedReference(ref, f"no pipeline parameter {ref.name!r}")
            return work.shape.parameters[ref.name]
        node = nodes.get(ref.step)
        if node is None or node.task is None:
            raise dag.UnresolvedReference(ref, f"step {ref.step!r} has no task")
        task = node.task
        if ref.kind == "id":
            return task.id
        if ref.kind == "task_field":
            return getattr(task, ref.field)
        if ref.kind == "parameter":
            section, _, key = ref.name.partition("/")
            entry = task.hyperparameters.get(section, {}).get(key)
            if entry is None:
                raise dag.UnresolvedReference(ref, f"task {task.id} has no parameter {ref.name}")
            return entry["value"]
        if ref.kind == "artifact":
            if (task.id, ref.name) not in artifacts:
                artifacts[task.id, ref.name] = Artifact.objects.filter(
                    task=task, name=ref.name
                ).first()
            artifact = artifacts[task.id, ref.name]
            if artifact is None:
                raise dag.UnresolvedReference(
                    ref, f"step {ref.step!r} has no artifact {ref.name!r}"
                )
            if artifact.state != ArtifactState.READY:
                raise dag.UnresolvedReference(ref, f"artifact {ref.name!r} is not ready")
            if not hasattr(artifact, ref.field) or ref.field in ("task", "storage_key"):
                raise dag.UnresolvedReference(ref, f"artifacts have no field {ref.field!r}")
            return getattr(artifact, ref.field)
        raise dag.UnresolvedReference(ref, "unsupported reference")

    return lookup


def _cache_key(base: Task, overrides: dict, config: dict) -> str:
    params = copy.deepcopy(base.hyperparameters)
    for section, values in overrides.items():
        params.setdefault(section, {}).update(values)
    script = {k: base.script.get(k) for k in ("code", "entry_point", "commit", "diff")}
    merged_config = {**base.configuration, **services.normalize_configuration(config)}
    payload = json.dumps(
        {"script": script, "params": params, "config": merged_config}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _cached_task(cache_key: str) -> Task | None:
    node = (
        PipelineNode.objects.filter(
            cache_key=cache_key,
            task__status__in=(TaskStatus.COMPLETED, TaskStatus.PUBLISHED),
        )
        .select_related("task")
        .order_by("-updated")
        .first()
    )
    return node.task if node else None
