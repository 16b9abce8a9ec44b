"""Pipelines run by the official ClearML SDK, mirrored as our PipelineRun rows.

A ClearML `PipelineController` launches its steps itself: it clones each step's base task
with the controller as `parent`, enqueues it, polls it, and rewrites its DAG into the
controller's configuration object `Pipeline` (JSON: node name -> {base_task_id, parents,
queue, parameters, executed, job_id, skip_job, ...}) after every change. This module reads
that DAG and the step tasks into a PipelineRun with driver `clearml` and one PipelineNode per
node, so the dashboard lists the pipeline and draws its live DAG like one of ours.

It only records what the controller did: the engine never launches, skips or aborts anything
for such a run (the engine refuses), and the controller's own "Pipeline" plots are left as it
reported them. The mirror is refreshed when the controller writes its `Pipeline`
configuration (handlers/tasks.py) and when the controller or one of its steps changes
status (a status listener registered in apps.py). The engine's `mirror_run` writes the
rows; each refresh rebuilds the whole run from the tasks, so refreshing twice, late or out
of order gives the same result.
"""

import json
import logging

from django.db import transaction
from django.utils import timezone

from webapp.core import access, engine
from webapp.core.choices import (
    NODE_STATUS_FOR_TASK,
    NodeStatus,
    PipelineDriver,
    PipelineStatus,
    TaskStatus,
    TaskType,
)
from webapp.core.models import PipelineNode, PipelineRun, Task

from .convert import CLEARML_SYSTEM_TAG

logger = logging.getLogger("webapp.compat")

PIPELINE_CONFIGURATION = "Pipeline"  # PipelineController._config_section
# PipelineController._args_section and _pipeline_section, in the controller's hyperparams
ARGS_SECTION = "Args"
PIPELINE_SECTION = "pipeline"

RUN_STATUS_FOR_CONTROLLER = {
    TaskStatus.CREATED: PipelineStatus.RUNNING,
    TaskStatus.QUEUED: PipelineStatus.RUNNING,
    TaskStatus.IN_PROGRESS: PipelineStatus.RUNNING,
    TaskStatus.COMPLETED: PipelineStatus.COMPLETED,
    TaskStatus.PUBLISHED: PipelineStatus.COMPLETED,
    TaskStatus.FAILED: PipelineStatus.FAILED,
    TaskStatus.STOPPED: PipelineStatus.STOPPED,
}
CONTROLLER_ENDED = (
    TaskStatus.COMPLETED,
    TaskStatus.PUBLISHED,
    TaskStatus.FAILED,
    TaskStatus.STOPPED,
)


# ---------------------------------------------------------------- triggers


def configuration_written(task: Task, changed_names) -> None:
    """After a ClearML client wrote configuration objects `changed_names` of `task`."""
    if PIPELINE_CONFIGURATION in changed_names and _is_controller(task):
        _refresh_on_commit(task.pk)


def task_status_changed(task: Task) -> None:
    """Status listener (core.status): a controller or a step of a mirrored run changed.

    Tasks not created through the ClearML protocol cost nothing here: only they can belong
    to a ClearML controller.
    """
    if CLEARML_SYSTEM_TAG not in (task.system_tags or []):
        return
    task_id, parent_id = task.pk, task.parent_id
    transaction.on_commit(lambda: _refresh_runs_of(task_id, parent_id))


def _is_controller(task: Task) -> bool:
    return task.type == TaskType.CONTROLLER or "pipeline" in (task.system_tags or [])


def _refresh_on_commit(controller_id: str) -> None:
    transaction.on_commit(lambda: _refresh_quietly(controller_id))


def _refresh_runs_of(task_id: str, parent_id: str | None) -> None:
    controllers = set(
        PipelineRun.objects.filter(
            driver=PipelineDriver.CLEARML,
            controller_id__in=[i for i in (task_id, parent_id) if i],
        ).values_list("controller_id", flat=True)
    )
    # A cached step is a task of an earlier run, linked by id rather than by parent.
    controllers.update(
        PipelineNode.objects.filter(task_id=task_id, run__driver=PipelineDriver.CLEARML)
        .values_list("run__controller_id", flat=True)
        .distinct()
    )
    for controller_id in controllers:
        _refresh_quietly(controller_id)


def _refresh_quietly(controller_id: str) -> None:
    # Runs after the ClearML call committed: a failure here must not turn it into an error
    # (the SDK would retry a call that already happened).
    try:
        refresh(controller_id)
    except Exception:  # noqa: BLE001 - the next write or status change refreshes again
        logger.exception("mirroring the pipeline of controller %s failed", controller_id)


# ---------------------------------------------------------------- the mirror


def refresh(controller_id: str) -> PipelineRun | None:
    """Create or bring up to date the mirrored run of a ClearML controller task."""
    controller = Task.objects.filter(pk=controller_id).first()
    if controller is None:
        return None
    dag = pipeline_dag(controller)
    status = RUN_STATUS_FOR_CONTROLLER.get(controller.status, PipelineStatus.RUNNING)
    ended = status != PipelineStatus.RUNNING
    return engine.mirror_run(
        controller,
        definition=None if dag is None else _definition(controller, dag),
        nodes_for=lambda steps: _nodes(steps, controller, dag),
        status=status,
        completed=(controller.completed or timezone.now()) if ended else None,
    )


def pipeline_dag(controller: Task) -> dict | None:
    """The controller's DAG {node name: node} from its `Pipeline` configuration, or None."""
    entry = (controller.configuration or {}).get(PIPELINE_CONFIGURATION)
    raw = entry.get("value") if isinstance(entry, dict) else entry
    try:
        dag = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    if not isinstance(dag, dict) or not all(isinstance(n, dict) for n in dag.values()):
        return None
    return dag


def _definition(controller: Task, dag: dict) -> dict:
    """The DAG as our step definitions (what the run page draws), and the pipeline's
    arguments; the ClearML-only node fields stay in the controller's configuration."""
    steps = [_step(name, node) for name, node in dag.items()]
    params = controller.hyperparameters or {}
    arguments = {
        name: entry.get("value") if isinstance(entry, dict) else entry
        for name, entry in (params.get(ARGS_SECTION) or {}).items()
    }
    queue = ((params.get(PIPELINE_SECTION) or {}).get("default_queue") or {}).get("value")
    return {"steps": steps, "parameters": arguments, "default_queue": queue or "default"}


def _step(name: str, node: dict) -> dict:
    parents = node.get("parents") or []
    step = {
        "name": str(name),
        "parents": [str(p) for p in parents] if isinstance(parents, list) else [],
        "base_task_id": node.get("base_task_id") or None,
        "parameter_override": _dict(node.get("parameters")),
        "configuration_overrides": _dict(node.get("configurations")),
        "execution_queue": node.get("queue") or None,
        "continue_on_fail": bool(node.get("continue_on_fail")),
        "cache_executed_step": bool(node.get("cache_executed_step")),
    }
    if node.get("timeout"):
        step["time_limit"] = node["timeout"]
    return step


def _dict(value) -> dict:
    return dict(value) if isinstance(value, dict) else {}


def _nodes(steps: list, controller: Task, dag: dict | None) -> list[dict]:
    names = [step["name"] for step in steps]
    nodes_by_name = {str(name): node for name, node in (dag or {}).items()}
    # Only tasks the controller's owner may see: a DAG naming another team's task ids must
    # not put those tasks on this run's page.
    visible = access.visible_tasks(controller.created_by)
    children = {}
    for child in visible.filter(parent=controller).order_by("created"):
        children[child.name] = child  # the newest clone of a retried step wins
    wanted_ids = {
        str(value)
        for node in nodes_by_name.values()
        for value in (node.get("job_id"), node.get("executed"), node.get("base_task_id"))
        if isinstance(value, str) and value
    }
    by_id = visible.in_bulk(wanted_ids - {c.pk for c in children.values()})
    by_id.update({c.pk: c for c in children.values()})
    nodes = []
    for position, name in enumerate(names):
        info = nodes_by_name.get(name, {})
        task = _step_task(info, name, by_id, children)
        status, message = _node_status(info, task, controller)
        nodes.append(
            {
                "name": name,
                "position": position,
                "task": task,
                "base_task": by_id.get(str(info.get("base_task_id") or "")),
                "status": status,
                "message": message,
                "attempts": 1 if task is not None else 0,
                "resolved_overrides": _dict(info.get("parameters")),
            }
        )
    return nodes


def _step_task(info: dict, name: str, by_id: dict, children: dict) -> Task | None:
    """The node's task: the one the controller launched (`job_id`, `executed`), else its
    clone found as the controller's child of the same name."""
    for key in ("job_id", "executed"):
        value = info.get(key)
        if isinstance(value, str) and value in by_id:
            return by_id[value]
    return children.get(name)


def _node_status(info: dict, task: Task | None, controller: Task) -> tuple[str, str]:
    if task is not None:
        status = NODE_STATUS_FOR_TASK.get(task.status, NodeStatus.PENDING)
        # A reused (cached) task is one of an earlier run: it existed before this controller.
        # Its parent says nothing: a step's parent is whatever its creator's key made it.
        reused = task.created < controller.created or info.get("status") == "cached"
        if reused and status == NodeStatus.COMPLETED:
            return NodeStatus.CACHED, f"reused task {task.pk}"
        return status, task.status_reason or ""
    if info.get("status") in (NodeStatus.FAILED, NodeStatus.ABORTED):
        return info["status"], "the controller could not launch it"
    if info.get("skip_job") or info.get("status") == "skipped":
        return NodeStatus.SKIPPED, "skipped by the controller"
    if controller.status in CONTROLLER_ENDED:
        return NodeStatus.SKIPPED, "never launched: the pipeline ended first"
    return NodeStatus.PENDING, ""
