"""Advancing a run: what happens when one of its steps changes state.

All decisions (what may launch, what is skipped, the outcome) come from the pure functions
in `pipelines/dag.py`; this module only applies them to rows. Every pass holds the run's row
lock, and a node records its task in the same transaction that clones it, so a second
advance (a duplicate message, a sweep, a restarted server) never launches a step twice.

What one event costs does not grow with the run: with a hint, `advance()` reads the changed
node, its children and their other parents; the run's definition is decoded once per
process (_shape.py); the run row counts its open nodes instead of the engine counting them;
the children a step releases are cloned and enqueued together in a few statements
(_launch.py); and the run's plot is only marked due, for a throttled job to rebuild
(_plot.py). The periodic sweep's full passes repair whatever an event missed, the count
included. A claim is a conditional UPDATE without the lock (_claim.py).
"""

import logging

from django.db import transaction
from django.utils import timezone

from pipelines import dag

from .. import services
from ..choices import (
    NODE_STATUS_FOR_TASK,
    NODE_TERMINAL,
    PIPELINE_TERMINAL,
    NodeStatus,
    PipelineDefinition,
    PipelineDriver,
    PipelineStatus,
    TaskStatus,
)
from ..errors import Conflict
from ..models import PipelineNode, PipelineRun, Task
from . import _claim, _map, _plot
from ._launch import launch
from ._pass import Nodes, Pass, locked, nodes_with_tasks, one, run_nodes, set_node
from ._shape import retried_with_fresh_shape

logger = logging.getLogger(__name__)


def mirrored(run) -> bool:
    """A ClearML controller drives its own steps: its run is only shown, never advanced here
    (webapp/compat/mirror.py keeps it up to date), and its plots are the controller's own."""
    return run.driver == PipelineDriver.CLEARML


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
        and _claim.mark_running(run_id, changed_task_id, now)
    ):
        return None
    return _locked_pass(run_id, changed_task_id, now)


@retried_with_fresh_shape(lambda run_id, *_args, **_kwargs: run_id)
def _locked_pass(run_id: str, changed_task_id: str | None, now) -> PipelineRun | None:
    with transaction.atomic():
        run = locked(run_id)
        if run is None or run.status in PIPELINE_TERMINAL or mirrored(run):
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
    nodes = step_nodes(run)
    sync_nodes(work, nodes)
    for node in list(nodes.values()):
        if _fanning_out(work, node):
            release(work, _map.check(work, node), nodes)
    states = {name: node.status for name, node in nodes.items()}
    if dag.should_abort(steps, states, run.abort_on_failure):
        abort_remaining(work, nodes, "a step failed and abort_on_failure is set")
    else:
        actions = dag.next_actions(steps, states)
        for name in actions.skip:
            set_node(work, nodes[name], NodeStatus.SKIPPED, "a parent failed or was skipped")
        if run.driver == PipelineDriver.SERVER and actions.launch:
            ended = launch(work, [nodes[name] for name in actions.launch], nodes)
            release(work, ended, nodes)
        if work.fatal and run.abort_on_failure:
            abort_remaining(work, nodes, "a step failed and abort_on_failure is set")
    states = {name: node.status for name, node in nodes.items()}
    run.open_nodes = sum(1 for status in states.values() if status not in NODE_TERMINAL)
    outcome = dag.pipeline_outcome(steps, states, run.abort_on_failure)
    if run.definition == PipelineDefinition.OPEN and not (work.fatal and run.abort_on_failure):
        outcome = None  # its script may still add steps
    if outcome is not None:
        _finish_run(work, nodes, outcome)


def step_nodes(run) -> dict:
    """The nodes of the run's steps by name, with their tasks (not a fan-out's batches)."""
    return {n.name: n for n in nodes_with_tasks(run).filter(map_step="").order_by("position")}


def _fanning_out(work: Pass, node) -> bool:
    """A map node whose items are running: it has no task of its own until they end."""
    step = work.shape.index.steps[node.name]
    return step.get("map") is not None and node.status == NodeStatus.RUNNING and not node.task_id


def _advance_from(work: Pass, task_id: str) -> None:
    run = work.run
    node = one(nodes_with_tasks(run).filter(task_id=task_id))
    if node is None:
        return
    if node.map_step:  # a batch of a fan-out's items
        release(work, _map.batch_changed(work, node))
        if (work.fatal and run.abort_on_failure) or run.open_nodes <= 0:
            _advance_full(work)
        return
    before = node.status
    sync_nodes(work, {node.name: node})
    if node.status == before:
        return
    if node.status == NodeStatus.PENDING:  # a retry
        if run.driver == PipelineDriver.SERVER:
            release(work, launch(work, [node], Nodes(work, [node])))
    elif node.status in NODE_TERMINAL:
        if not (work.fatal and run.abort_on_failure):
            release(work, [node])
    else:
        return
    if (work.fatal and run.abort_on_failure) or run.open_nodes <= 0:
        # The run may be over: a full pass settles the outcome (once per run) and, should
        # the count have drifted, corrects it.
        _advance_full(work)


def release(work: Pass, ended: list, nodes: dict | None = None) -> None:
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
    if not ready or run.driver != PipelineDriver.SERVER:
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


def sync_nodes(work: Pass, nodes: dict) -> None:
    steps = work.shape.index.steps
    for node in nodes.values():
        if node.task is None or node.status in (NodeStatus.CACHED, NodeStatus.SKIPPED):
            continue
        status = NODE_STATUS_FOR_TASK.get(node.task.status, NodeStatus.PENDING)
        if node.task.status == TaskStatus.CREATED and node.status == NodeStatus.QUEUED:
            status = NodeStatus.QUEUED  # dequeued by hand: keep waiting, not relaunched
        if status == NodeStatus.FAILED and node.attempts <= _retries(steps[node.name]):
            node.task = None
            set_node(
                work, node, NodeStatus.PENDING, f"retrying after attempt {node.attempts} failed"
            )
            continue
        if status != node.status:
            set_node(work, node, status, node.task.status_reason)


def _retries(step: dict) -> int:
    """A fan-out retries its items in their tasks; launched again, it would fan out again."""
    return 0 if step.get("map") is not None else step["retry_on_failure"]


def abort_remaining(work: Pass, nodes: dict, reason: str) -> None:
    fanning = [node.name for node in nodes.values() if _fanning_out(work, node)]
    if fanning:
        _map.abort_batches(work, fanning, reason)
    for node in nodes.values():
        if node.status in NODE_TERMINAL:
            continue
        if node.name in fanning:
            set_node(work, node, NodeStatus.ABORTED, reason)
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
    # The controller of a client-driven run, or of one its script built as it ran, is a
    # live process: it reports its own end.
    drives_itself = (
        run.driver != PipelineDriver.SERVER or run.definition != PipelineDefinition.FIXED
    )
    if not drives_itself and controller.status == TaskStatus.IN_PROGRESS:
        failed = [n.name for n in nodes.values() if n.status == NodeStatus.FAILED]
        if run.status == PipelineStatus.COMPLETED:
            services.mark_completed(controller, reason="pipeline completed")
        else:
            services.mark_failed(
                controller, reason=f"pipeline step failed: {', '.join(failed) or 'aborted'}"
            )
    _plot.write_final(run, work.shape, nodes, work.now)
