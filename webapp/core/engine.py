"""The pipeline engine: advances a run whenever one of its steps changes state.

All decisions (what may launch, what is skipped, the outcome) come from the pure functions
in `pipelines/dag.py`; this module only applies them to rows. `advance()` holds the run's
row lock, and a node records its task in the same transaction that clones it, so a second
advance (a duplicate message, a sweep, a restarted server) never launches a step twice.
"""

import copy
import hashlib
import json
import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from pipelines import dag, parameters

from . import services
from .choices import (
    NODE_STATUS_FOR_TASK,
    NODE_TERMINAL,
    PIPELINE_TERMINAL,
    ArtifactState,
    NodeStatus,
    PipelineStatus,
    TaskStatus,
)
from .errors import Conflict, InvalidInput, NotFound
from .models import Artifact, PipelineNode, PipelineRun, Plot, Task
from .pipeline_figure import build_pipeline_figure, build_pipeline_table

logger = logging.getLogger(__name__)

PLOT_TITLE = "Pipeline"
PLOT_MIN_INTERVAL = timedelta(seconds=1)
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
}


# ---------------------------------------------------------------- starting


def start_run(
    *,
    user,
    controller: Task,
    steps: list,
    parameters: dict | None = None,
    default_queue: str = "default",
    abort_on_failure: bool = False,
    driver: str = "server",
    visible_tasks=None,
) -> PipelineRun:
    """Validate the whole definition, resolve base tasks, then create the run.

    Nothing is cloned when anything is wrong: every error names the step and parameter.
    """
    if not isinstance(steps, list) or not steps:
        raise InvalidInput("a pipeline needs at least one step")
    if driver not in ("server", "client"):
        raise InvalidInput("driver must be 'server' or 'client'")
    parameters = dict(parameters or {})
    clean = [_clean_step(index, step) for index, step in enumerate(steps)]
    try:
        dag.validate_pipeline(clean, parameters)
    except dag.PipelineDefinitionError as error:
        raise InvalidInput(str(error), step=error.step, parameter=error.parameter) from error
    tasks = visible_tasks if visible_tasks is not None else Task.objects.all()
    for step in clean:
        step["base_task_id"] = _resolve_base_task(tasks, step).id
        step.setdefault("execution_queue", None)
    if hasattr(controller, "pipeline_run"):
        raise Conflict(f"task {controller.id} already controls a pipeline run")
    with transaction.atomic():
        run = PipelineRun.objects.create(
            controller=controller,
            steps=clean,
            parameters=parameters,
            default_queue=default_queue or "default",
            abort_on_failure=abort_on_failure,
            driver=driver,
        )
        PipelineNode.objects.bulk_create(
            [
                PipelineNode(
                    run=run, name=step["name"], position=index, base_task_id=step["base_task_id"]
                )
                for index, step in enumerate(clean)
            ]
        )
        if controller.status == TaskStatus.CREATED:
            services.mark_started(controller)
        services.edit_task(
            controller,
            {"runtime": {**controller.runtime, "pipeline_run": run.id}},
        )
        transaction.on_commit(lambda: _schedule(run.id))
    return run


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
    clean["parents"] = list(clean.get("parents") or [])
    for key in ("parameter_override", "configuration_overrides"):
        value = clean.get(key) or {}
        if not isinstance(value, dict):
            raise InvalidInput(f"step {step.get('name')!r}: {key} must be an object")
        clean[key] = value
    retries = clean.get("retry_on_failure") or 0
    if not isinstance(retries, int) or retries < 0:
        raise InvalidInput(f"step {step.get('name')!r}: retry_on_failure must be an integer >= 0")
    clean["retry_on_failure"] = retries
    return clean


def _resolve_base_task(tasks, step: dict) -> Task:
    name = step["name"]
    if step.get("base_task_id"):
        task = tasks.filter(pk=str(step["base_task_id"])).first()
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
    candidates = tasks.filter(name=task_name).exclude(status=TaskStatus.FAILED)
    if project:
        candidates = candidates.filter(project__name=project)
    task = candidates.order_by("-created").first()
    if task is None:
        raise InvalidInput(
            f"step {name!r}: no base task named {task_name!r} in project {project!r} "
            "(run the step script once to register it)",
            step=name,
            parameter="base_task_name",
        )
    return task


def _schedule(run_id: str) -> None:
    from .engine_hooks import _advance_soon

    _advance_soon(run_id)


# ---------------------------------------------------------------- advancing


_INDEXES: dict[str, dag.GraphIndex] = {}


def _index(run: PipelineRun) -> dag.GraphIndex:
    """A run's steps never change, so its graph index is built once per process."""
    index = _INDEXES.get(run.pk)
    if index is None:
        if len(_INDEXES) > 256:
            _INDEXES.clear()
        index = _INDEXES[run.pk] = dag.index_graph(run.steps)
    return index


class _Nodes(dict):
    """Nodes by name, loaded from the database on first use (reference lookups)."""

    def __init__(self, run: PipelineRun, preloaded=()):
        super().__init__((node.name, node) for node in preloaded)
        self.run = run

    def __missing__(self, name):
        node = self.run.nodes.select_related("task").filter(name=name).first()
        self[name] = node
        return node

    def get(self, name, default=None):
        node = self[name]
        return default if node is None else node


def advance(run_id: str, changed_task_id: str | None = None, now=None) -> PipelineRun | None:
    """Bring a run up to date after a step's task changed (or, with no hint, entirely).

    With a hint only that node, its children and their parents are read, so the cost per
    event does not grow with the size of the pipeline; the periodic sweep does full passes.
    """
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status in PIPELINE_TERMINAL:
            return run
        if changed_task_id is None:
            _advance_full(run, now)
        else:
            _advance_from(run, changed_task_id, now)
    return run


def _advance_full(run: PipelineRun, now=None) -> None:
    nodes = {n.name: n for n in run.nodes.select_related("task")}
    changed = _sync_nodes(run, nodes)
    states = {name: node.status for name, node in nodes.items()}
    if dag.should_abort(run.steps, states, run.abort_on_failure):
        changed |= _abort_remaining(nodes, "a step failed and abort_on_failure is set")
    else:
        changed |= _launch_ready(run, nodes, launch=run.driver == "server")
    states = {name: node.status for name, node in nodes.items()}
    outcome = dag.pipeline_outcome(run.steps, states, run.abort_on_failure)
    if outcome is not None:
        _finish_run(run, nodes, outcome)
    _report_plot(run, nodes, force=outcome is not None, now=now)


def _advance_from(run: PipelineRun, task_id: str, now=None) -> None:
    node = run.nodes.select_related("task").filter(task_id=task_id).first()
    if node is None:
        return
    before = node.status
    _sync_nodes(run, {node.name: node})
    if node.status == before:
        return
    index = _index(run)
    step = index.steps[node.name]
    if node.status == NodeStatus.PENDING:  # a retry
        if run.driver == "server":
            _launch(run, step, node, _Nodes(run, [node]))
    elif node.status in NODE_TERMINAL:
        if run.abort_on_failure and dag.fails_pipeline(step, node.status):
            _advance_full(run, now)
            return
        _advance_children(run, index, node)
        if not run.nodes.exclude(status__in=NODE_TERMINAL).exists():
            _advance_full(run, now)
            return
    _report_plot(run, None, now=now)


def _advance_children(run: PipelineRun, index: dag.GraphIndex, node: PipelineNode) -> None:
    children = index.children.get(node.name, ())
    if not children:
        return
    involved = set(children)
    for child in children:
        involved.update(index.parents[child])
    states = dict(run.nodes.filter(name__in=involved).values_list("name", "status"))
    waiting = {
        n.name: n
        for n in run.nodes.filter(name__in=children, status=NodeStatus.PENDING, task__isnull=True)
    }
    lookup_nodes = _Nodes(run, [node])
    for child in children:
        if child not in waiting:
            continue
        decision = dag.decide_step(index, child, states)
        if decision == "skip":
            _skip_subtree(run, index, child)
        elif decision == "launch" and run.driver == "server":
            _launch(run, index.steps[child], waiting[child], lookup_nodes)


def _skip_subtree(run: PipelineRun, index: dag.GraphIndex, name: str) -> None:
    names = [name, *dag.descendants(index, name)]
    run.nodes.filter(name__in=names, status=NodeStatus.PENDING, task__isnull=True).update(
        status=NodeStatus.SKIPPED, message="a parent failed or was skipped", updated=timezone.now()
    )


def _sync_nodes(run: PipelineRun, nodes: dict) -> bool:
    changed = False
    steps = {step["name"]: step for step in run.steps}
    for node in nodes.values():
        if node.task is None or node.status in (NodeStatus.CACHED, NodeStatus.SKIPPED):
            continue
        status = NODE_STATUS_FOR_TASK.get(node.task.status, NodeStatus.PENDING)
        if node.task.status == TaskStatus.CREATED and node.status == NodeStatus.QUEUED:
            status = NodeStatus.QUEUED  # dequeued by hand: keep waiting, not relaunched
        if status == NodeStatus.FAILED and node.attempts <= steps[node.name]["retry_on_failure"]:
            node.task = None
            _set(node, NodeStatus.PENDING, f"retrying after attempt {node.attempts} failed")
            changed = True
            continue
        if status != node.status:
            _set(node, status, node.task.status_reason)
            changed = True
    return changed


def _set(node: PipelineNode, status: str, message: str = "") -> None:
    node.status = status
    node.message = message or ""
    node.updated = timezone.now()
    node.save(update_fields=["status", "message", "updated", "task", "attempts"])


def _launch_ready(run: PipelineRun, nodes: dict, launch: bool = True) -> bool:
    states = {name: node.status for name, node in nodes.items()}
    actions = dag.next_actions(run.steps, states)
    steps = {step["name"]: step for step in run.steps}
    for name in actions.skip:
        _set(nodes[name], NodeStatus.SKIPPED, "a parent failed or was skipped")
    if not launch:
        return bool(actions.skip)
    for name in actions.launch:
        _launch(run, steps[name], nodes[name], nodes)
    return bool(actions.skip or actions.launch)


def _abort_remaining(nodes: dict, reason: str) -> bool:
    changed = False
    for node in nodes.values():
        if node.status in NODE_TERMINAL:
            continue
        if node.task is not None and node.task.status in (
            TaskStatus.QUEUED,
            TaskStatus.IN_PROGRESS,
            TaskStatus.CREATED,
        ):
            try:
                services.abort_task(node.task, reason)
            except Conflict:
                pass
            _set(node, NodeStatus.ABORTED, reason)
        else:
            _set(node, NodeStatus.SKIPPED, reason)
        changed = True
    return changed


def _finish_run(run: PipelineRun, nodes: dict, outcome: str) -> None:
    run.status = PipelineStatus.COMPLETED if outcome == "completed" else PipelineStatus.FAILED
    run.completed = timezone.now()
    run.save(update_fields=["status", "completed"])
    controller = Task.objects.get(pk=run.controller_id)
    # A client-driven run's controller is a live process: it reports its own end.
    if run.driver == "server" and controller.status == TaskStatus.IN_PROGRESS:
        failed = [n.name for n in nodes.values() if n.status == NodeStatus.FAILED]
        if run.status == PipelineStatus.COMPLETED:
            services.mark_completed(controller, reason="pipeline completed")
        else:
            services.mark_failed(
                controller, reason=f"pipeline step failed: {', '.join(failed) or 'aborted'}"
            )


# ---------------------------------------------------------------- launching one step


def launch_step(run: PipelineRun, name: str) -> PipelineNode:
    """Launch one pending step now (the SDK's start_locally() decides when)."""
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().get(pk=run.pk)
        nodes = {n.name: n for n in run.nodes.select_related("task")}
        _sync_nodes(run, nodes)
        if name not in nodes:
            raise NotFound(f"pipeline has no step {name!r}")
        node = nodes[name]
        if node.status != NodeStatus.PENDING or node.task_id:
            return node  # already launched: launching twice is a no-op
        step = next(s for s in run.steps if s["name"] == name)
        _launch(run, step, node, nodes)
        _report_plot(run, nodes)
    return node


def skip_step(run: PipelineRun, name: str, reason: str = "skipped by callback") -> PipelineNode:
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().get(pk=run.pk)
        node = run.nodes.filter(name=name).first()
        if node is None:
            raise NotFound(f"pipeline has no step {name!r}")
        if node.status == NodeStatus.PENDING and node.task_id is None:
            _set(node, NodeStatus.SKIPPED, reason)
    _schedule(run.pk)
    return node


def _launch(run: PipelineRun, step: dict, node: PipelineNode, nodes: dict) -> None:
    base = Task.objects.filter(pk=step["base_task_id"]).first()
    if base is None:
        _set(node, NodeStatus.FAILED, f"base task {step['base_task_id']} no longer exists")
        return
    try:
        lookup = _reference_lookup(run, nodes)
        params = dag.resolve_overrides(step["parameter_override"], lookup)
        config = dag.resolve_overrides(step["configuration_overrides"], lookup)
    except dag.UnresolvedReference as error:
        _set(node, NodeStatus.FAILED, f"cannot resolve {error.ref.text}: {error.reason}")
        return
    overrides = services.normalize_hyperparameters(parameters.nest(params))
    node.resolved_overrides = {**params, **{f"configuration:{k}": v for k, v in config.items()}}
    node.attempts += 1
    if step.get("cache_executed_step"):
        node.cache_key = _cache_key(base, overrides, config)
        cached = _cached_task(node.cache_key)
        if cached is not None:
            node.task = cached
            node.save(update_fields=["resolved_overrides", "cache_key", "attempts"])
            _set(node, NodeStatus.CACHED, f"reused task {cached.id}")
            return
    controller = run.controller
    task = services.clone_task(
        base,
        user=controller.created_by,
        name=step["name"],
        project=controller.project,
        parent=controller,
        hyperparameters=overrides,
        configuration=config,
        time_limit=float(step["time_limit"]) if step.get("time_limit") else None,
    )
    node.task = task
    node.save(update_fields=["task", "resolved_overrides", "cache_key", "attempts"])
    queue = step.get("execution_queue") or run.default_queue
    services.enqueue_task(task, queue)
    _set(node, NodeStatus.QUEUED, f"enqueued on {queue}")


def _reference_lookup(run: PipelineRun, nodes: dict):
    def lookup(ref: dag.Reference):
        if ref.kind == "pipeline":
            if ref.name not in run.parameters:
                raise dag.UnresolvedReference(ref, f"no pipeline parameter {ref.name!r}")
            return run.parameters[ref.name]
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
            artifact = Artifact.objects.filter(task=task, name=ref.name).first()
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


# ---------------------------------------------------------------- stopping and the plot


def stop_run(run_id: str, reason: str = "pipeline stopped") -> PipelineRun:
    """Abort what is still running, skip what has not started, mark the run stopped."""
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().get(pk=run_id)
        if run.status in PIPELINE_TERMINAL:
            return run
        nodes = {n.name: n for n in run.nodes.select_related("task")}
        _sync_nodes(run, nodes)
        _abort_remaining(nodes, reason)
        run.status = PipelineStatus.STOPPED
        run.completed = timezone.now()
        run.save(update_fields=["status", "completed"])
        controller = Task.objects.get(pk=run.controller_id)
        if controller.status in (TaskStatus.IN_PROGRESS, TaskStatus.QUEUED):
            services.abort_task(controller, reason)
        _report_plot(run, nodes, force=True)
    return run


def _report_plot(run: PipelineRun, nodes: dict | None, force: bool = False, now=None) -> None:
    """Upsert the DAG figure and the details table on the controller task, throttled."""
    now = now or timezone.now()
    if not force and run.plot_updated and now - run.plot_updated < PLOT_MIN_INTERVAL:
        return
    if nodes is None:
        nodes = {n.name: n for n in run.nodes.all()}
    view = {
        name: {
            "status": node.status,
            "task_id": node.task_id,
            "overrides": node.resolved_overrides or _declared_overrides(run, name),
        }
        for name, node in nodes.items()
    }
    for series, figure in (
        ("Execution Flow", build_pipeline_figure(run.steps, view)),
        ("Execution Details", build_pipeline_table(run.steps, view)),
    ):
        Plot.objects.update_or_create(
            task_id=run.controller_id,
            title=PLOT_TITLE,
            series=series,
            iteration=0,
            defaults={"figure": figure, "timestamp": now},
        )
    PipelineRun.objects.filter(pk=run.pk).update(plot_updated=now)
    run.plot_updated = now


def _declared_overrides(run: PipelineRun, name: str) -> dict:
    step = next((s for s in run.steps if s["name"] == name), {})
    return dict(step.get("parameter_override") or {})


def advance_all_running() -> list[str]:
    runs = list(
        PipelineRun.objects.filter(status=PipelineStatus.RUNNING).values_list(
            "pk", "driver", "controller__status"
        )
    )
    for run_id, driver, controller_status in runs:
        try:
            if driver == "client" and controller_status in (TaskStatus.FAILED, TaskStatus.STOPPED):
                # Only the controller's process launches the steps of a client-driven run:
                # once it has ended (its worker died, its script crashed) the run would
                # otherwise stay running for ever.
                stop_run(run_id, f"the controller ended ({controller_status}) during the run")
            else:
                advance(run_id)
        except Exception:  # noqa: BLE001 - one broken run must not stop the sweep
            logger.exception("advancing pipeline run %s failed", run_id)
    return [run_id for run_id, _, _ in runs]
