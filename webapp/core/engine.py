"""The pipeline engine: advances a run whenever one of its steps changes state.

All decisions (what may launch, what is skipped, the outcome) come from the pure functions
in `pipelines/dag.py`; this module only applies them to rows. `advance()` holds the run's
row lock, and a node records its task in the same transaction that clones it, so a second
advance (a duplicate message, a sweep, a restarted server) never launches a step twice.

What one event costs does not grow with the run: with a hint, `advance()` reads the changed
node, its children and their other parents; the run's definition is decoded once per
process; the run row counts its open nodes instead of the engine counting them; the
children a step releases are cloned and enqueued together in a few statements; and the
run's plot is only marked due, for a throttled job to rebuild (engine_plot.py). The
periodic sweep's full passes repair whatever an event missed, the count included.

What one event costs in statements is kept low too: a claim is a conditional UPDATE without
the lock (engine_claim.py); a pass writes the nodes it changed in one statement; and the
base tasks of released children, the run's queues and its controller come with other reads
or from the run's shape.
"""

import copy
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from pipelines import dag

from . import access, engine_claim, engine_definition, engine_plot, limits, services
from .choices import (
    NODE_STATUS_FOR_TASK,
    NODE_TERMINAL,
    PIPELINE_TERMINAL,
    NodeStatus,
    PipelineDriver,
    PipelineStatus,
    TaskStatus,
    TaskType,
)
from .engine_launch import (
    Nodes,
    Pass,
    forget_shape,
    launch,
    locked,
    nodes_with_tasks,
    one,
    run_nodes,
    set_node,
    shape_of,
)
from .errors import Conflict, InvalidInput, NotFound
from .models import PipelineNode, PipelineRun, Task

logger = logging.getLogger(__name__)

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
    if not isinstance(parameters or {}, dict):
        raise InvalidInput("parameters must be an object", field="parameters")
    parameters = dict(parameters or {})
    for name in parameters:
        limits.text("parameters", name, limits.PARAMETER_NAME_MAX)
    limits.json_value("parameters", parameters)
    default_queue = services.checked_queue_name(default_queue or "default", "default_queue")
    tasks = visible_tasks if visible_tasks is not None else Task.objects.all()
    clean = engine_definition.checked_steps(steps, parameters, tasks)
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
            open_nodes=len(clean),
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


def _mirrored(run: PipelineRun) -> bool:
    """A ClearML controller drives its own steps: its run is only shown, never advanced here
    (webapp/compat/mirror.py keeps it up to date), and its plots are the controller's own."""
    return run.driver == PipelineDriver.CLEARML


def _refuse_mirrored(run: PipelineRun) -> None:
    if _mirrored(run):
        raise Conflict(f"pipeline run {run.pk} is driven by its ClearML controller")


def _schedule(run_id: str) -> None:
    from .engine_hooks import _advance_soon

    _advance_soon(run_id)


# ---------------------------------------------------------------- advancing


def advance(
    run_id: str, changed_task_id: str | None = None, now=None, task_status: str | None = None
) -> PipelineRun | None:
    """Bring a run up to date after a step's task changed (or, with no hint, entirely).

    With a hint only that node, its children and their other parents are read, so the cost
    per event does not grow with the size of the pipeline; the periodic sweep does full
    passes, which also recount the run's open nodes.

    `task_status` is the status the hook saw the task move to. It only picks the path: a
    task that did not start cannot be a claim, so the claim's fast path is not tried; the
    locked pass reads the rows whatever the hint says.
    """
    if (
        changed_task_id is not None
        and task_status in (None, TaskStatus.IN_PROGRESS)
        and engine_claim.mark_running(run_id, changed_task_id, now)
    ):
        return None
    try:
        return _locked_pass(run_id, changed_task_id, now)
    except IntegrityError:
        # A queue the run's shape remembers may have been deleted (and made again by name):
        # once more, with the shape read afresh.
        forget_shape(run_id)
        return _locked_pass(run_id, changed_task_id, now)


def _locked_pass(run_id: str, changed_task_id: str | None, now) -> PipelineRun | None:
    with transaction.atomic():
        run = locked(run_id)
        if run is None or run.status in PIPELINE_TERMINAL or _mirrored(run):
            return run
        work = Pass(run, now)
        if changed_task_id is None:
            _advance_full(work)
        else:
            _advance_from(work, changed_task_id)
        work.flush()
    return run


def _advance_full(work: Pass) -> None:
    run, steps = work.run, work.shape.steps
    work.write_nodes()
    nodes = {n.name: n for n in nodes_with_tasks(run).order_by("position")}
    _sync_nodes(work, nodes)
    states = {name: node.status for name, node in nodes.items()}
    if dag.should_abort(steps, states, run.abort_on_failure):
        _abort_remaining(work, nodes, "a step failed and abort_on_failure is set")
    else:
        actions = dag.next_actions(steps, states)
        for name in actions.skip:
            set_node(work, nodes[name], NodeStatus.SKIPPED, "a parent failed or was skipped")
        if run.driver == "server" and actions.launch:
            ended = launch(work, [nodes[name] for name in actions.launch], nodes)
            _release(work, ended, nodes)
        if work.fatal and run.abort_on_failure:
            _abort_remaining(work, nodes, "a step failed and abort_on_failure is set")
    states = {name: node.status for name, node in nodes.items()}
    run.open_nodes = sum(1 for status in states.values() if status not in NODE_TERMINAL)
    outcome = dag.pipeline_outcome(steps, states, run.abort_on_failure)
    if outcome is not None:
        _finish_run(work, nodes, outcome)


def _advance_from(work: Pass, task_id: str) -> None:
    run = work.run
    node = one(nodes_with_tasks(run).filter(task_id=task_id))
    if node is None:
        return
    before = node.status
    _sync_nodes(work, {node.name: node})
    if node.status == before:
        return
    if node.status == NodeStatus.PENDING:  # a retry
        if run.driver == "server":
            _release(work, launch(work, [node], Nodes(work, [node])))
    elif node.status in NODE_TERMINAL:
        if not (work.fatal and run.abort_on_failure):
            _release(work, [node])
    else:
        return
    if (work.fatal and run.abort_on_failure) or run.open_nodes <= 0:
        # The run may be over: a full pass settles the outcome (once per run) and, should
        # the count have drifted, corrects it.
        _advance_full(work)


def _release(work: Pass, ended: list, nodes: dict | None = None) -> None:
    """Decide the children of steps that just ended, and theirs in turn when launching one
    ends it at once (a cache hit, a reference that cannot be resolved)."""
    ended = list(ended)
    while ended:
        ended.extend(_advance_children(work, ended.pop(), nodes))


def _advance_children(work: Pass, node: PipelineNode, nodes: dict | None) -> list:
    """Skip or launch the waiting children of `node`; returns the nodes that ended at once.

    `nodes` is every node of the run when a full pass has them in memory; otherwise only
    the children and their other parents are read.
    """
    run, index = work.run, work.shape.index
    children = index.children.get(node.name, ())
    if not children:
        return []
    if nodes is not None:
        states = {name: n.status for name, n in nodes.items()}
        waiting = {
            name: nodes[name]
            for name in children
            if nodes[name].status == NodeStatus.PENDING and nodes[name].task_id is None
        }
    else:
        others = {p for child in children for p in index.parents[child]} - {node.name}
        work.write_nodes(before_reading={*others, *children})
        states = {node.name: node.status}
        if others:
            states.update(run_nodes(run).filter(name__in=others).values_list("name", "status"))
        # With their base tasks, which launching them clones.
        waiting = {
            n.name: n
            for n in run_nodes(run)
            .filter(name__in=children, status=NodeStatus.PENDING, task__isnull=True)
            .select_related("base_task")
        }
    ready, skip = [], []
    for child in children:
        if child in waiting:
            decision = dag.decide_step(index, child, states)
            if decision == "skip":
                skip.append(child)
            elif decision == "launch":
                ready.append(waiting[child])
    if skip:
        _skip_subtrees(work, skip, nodes)
    if not ready or run.driver != "server":
        return []
    return launch(work, ready, nodes if nodes is not None else Nodes(work, [node]))


def _skip_subtrees(work: Pass, names: list, nodes: dict | None) -> None:
    targets = [*names, *dag.descendants_of(work.shape.index, names)]
    reason = "a parent failed or was skipped"
    if nodes is not None:
        for name in targets:
            target = nodes[name]
            if target.status == NodeStatus.PENDING and target.task_id is None:
                set_node(work, target, NodeStatus.SKIPPED, reason)
        return
    work.write_nodes(before_reading=targets)
    skipped = (
        run_nodes(work.run)
        .filter(name__in=targets, status=NodeStatus.PENDING, task__isnull=True)
        .update(status=NodeStatus.SKIPPED, message=reason, updated=timezone.now())
    )
    work.run.open_nodes -= skipped
    work.changed = True


def _sync_nodes(work: Pass, nodes: dict) -> None:
    steps = work.shape.index.steps
    for node in nodes.values():
        if node.task is None or node.status in (NodeStatus.CACHED, NodeStatus.SKIPPED):
            continue
        status = NODE_STATUS_FOR_TASK.get(node.task.status, NodeStatus.PENDING)
        if node.task.status == TaskStatus.CREATED and node.status == NodeStatus.QUEUED:
            status = NodeStatus.QUEUED  # dequeued by hand: keep waiting, not relaunched
        if status == NodeStatus.FAILED and node.attempts <= steps[node.name]["retry_on_failure"]:
            node.task = None
            set_node(
                work, node, NodeStatus.PENDING, f"retrying after attempt {node.attempts} failed"
            )
            continue
        if status != node.status:
            set_node(work, node, status, node.task.status_reason)


def _abort_remaining(work: Pass, nodes: dict, reason: str) -> None:
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
            set_node(work, node, NodeStatus.ABORTED, reason)
        else:
            set_node(work, node, NodeStatus.SKIPPED, reason)


def _finish_run(work: Pass, nodes: dict, outcome: str) -> None:
    run = work.run
    run.status = PipelineStatus.COMPLETED if outcome == "completed" else PipelineStatus.FAILED
    run.completed = timezone.now()
    run.save(update_fields=["status", "completed"])
    work.before.update(status=run.status, completed=run.completed)
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
    engine_plot.write_final(run, work.shape, nodes, work.now)


# ---------------------------------------------------------------- launching


def launch_step(run: PipelineRun, name: str) -> PipelineNode:
    """Launch one pending step now (the SDK's start_locally() decides when)."""
    try:
        return _launch_step(run, name)
    except IntegrityError:
        forget_shape(run.pk)  # as in advance()
        return _launch_step(run, name)


def _launch_step(run: PipelineRun, name: str) -> PipelineNode:
    with transaction.atomic():
        run = locked(run.pk)
        if run is None:
            raise NotFound("pipeline run not found")
        _refuse_mirrored(run)
        work = Pass(run)
        node = one(nodes_with_tasks(run).filter(name=name))
        if node is None:
            raise NotFound(f"pipeline has no step {name!r}")
        _sync_nodes(work, {name: node})
        if node.status == NodeStatus.PENDING and not node.task_id:
            _release(work, launch(work, [node], Nodes(work, [node])))
        # else: already launched, and launching twice is a no-op
        work.flush()
    return node


def skip_step(run: PipelineRun, name: str, reason: str = "skipped by callback") -> PipelineNode:
    with transaction.atomic():
        run = locked(run.pk)
        if run is None:
            raise NotFound("pipeline run not found")
        _refuse_mirrored(run)
        work = Pass(run)
        node = one(run_nodes(run).filter(name=name))
        if node is None:
            raise NotFound(f"pipeline has no step {name!r}")
        if node.status == NodeStatus.PENDING and node.task_id is None:
            set_node(work, node, NodeStatus.SKIPPED, reason)
        work.flush()
    _schedule(run.pk)
    return node


# ---------------------------------------------------------------- stopping and the plot


def stop_run(run_id: str, reason: str = "pipeline stopped") -> PipelineRun:
    """Abort what is still running, skip what has not started, mark the run stopped."""
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().defer("steps", "parameters").get(pk=run_id)
        if run.status in PIPELINE_TERMINAL:
            return run
        if _mirrored(run):
            from .engine_hooks import stop_mirrored_run

            return stop_mirrored_run(run, reason)
        work = Pass(run)
        nodes = {n.name: n for n in nodes_with_tasks(run).order_by("position")}
        _sync_nodes(work, nodes)
        _abort_remaining(work, nodes, reason)
        run.status = PipelineStatus.STOPPED
        run.completed = timezone.now()
        run.open_nodes = 0
        controller = Task.objects.get(pk=run.controller_id)
        if controller.status in (TaskStatus.IN_PROGRESS, TaskStatus.QUEUED):
            services.abort_task(controller, reason)
        engine_plot.write_final(run, work.shape, nodes, work.now)
        work.flush()
    return run


def rerun(run_id: str, *, user) -> PipelineRun:
    """Run an ended pipeline again on the server: a new controller task (same project, name,
    parameters and tags, its parent the old controller) and a new run of the same steps from
    the same base tasks, with the same pipeline parameters."""
    run = PipelineRun.objects.select_related("controller__project").get(pk=run_id)
    if _mirrored(run):
        raise Conflict("this run follows a ClearML controller: run its controller script again")
    if run.driver == PipelineDriver.CLIENT:
        raise Conflict(
            "this run was driven by its script's Python callbacks, which only that script "
            "can run: run the script again"
        )
    if run.status not in PIPELINE_TERMINAL:
        raise Conflict(f"the run is still {run.status}: wait for it to end or abort it first")
    old = run.controller
    controller = services.create_task(
        user=user,
        project_name=old.project.name,
        name=old.name,
        task_type=TaskType.CONTROLLER,
        hyperparameters=copy.deepcopy(old.hyperparameters),
        configuration=copy.deepcopy(old.configuration),
        tags=list(old.tags),
        parent=old,
        start_running=True,
    )
    return start_run(
        user=user,
        controller=controller,
        steps=copy.deepcopy(run.steps),
        parameters=dict(run.parameters),
        default_queue=run.default_queue,
        abort_on_failure=run.abort_on_failure,
        driver=PipelineDriver.SERVER,
        visible_tasks=access.visible_tasks(user),
    )


def refresh_plot(run_id: str) -> bool:
    """The throttled job behind a run's plot (see engine_plot)."""
    return engine_plot.refresh(run_id, shape_of)


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
