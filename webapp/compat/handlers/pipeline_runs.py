"""pipelines.*: ClearML's web UI starts a pipeline by cloning its controller task with new
arguments and queueing the clone, and deletes runs (controllers with their steps). Both
go through our own endpoints' verbs: tasks.clone and tasks.enqueue, tasks.delete."""

import copy
import re
from dataclasses import replace

from django.db import transaction

from webapp.core import policy, services
from webapp.core.choices import TaskType
from webapp.core.models import Task

from ..convert import hyperparams_to_ours
from ..documents import get_project, get_task, visible_tasks
from ..envelope import ApiError, bad_request
from ..query import as_list
from ..registry import endpoint
from . import task_batches, task_removal, task_status, tasks
from .workers import live_workers

ARGS_MAX = 1_000


def _as(call, name: str, verb: str, body: dict):
    """`call` as one to the endpoint `name`: its verb, and the caller's rule for it."""
    return replace(
        call, name=name, body=body, verb=verb, rule=policy.rule_for(verb, call.user, call.key)
    )


def _args(value) -> dict:
    """The run's arguments as the controller's `Args` section."""
    items = value if isinstance(value, list) else []
    if not isinstance(value, list | type(None)) or len(items) > ARGS_MAX:
        raise bad_request(f"args must be a list of at most {ARGS_MAX} {{name, value}}", subcode=12)
    section = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise bad_request("each of args needs a name", subcode=12)
        section[item["name"]] = {
            "section": "Args",
            "name": item["name"],
            "value": item.get("value"),
        }
    return hyperparams_to_ours({"Args": section})["Args"] if section else {}


def _run_name(run: Task) -> str:
    """As clearml-server names a run: its project's base name, then ` #n` for the n-th."""
    prefix = run.project.name.rpartition("/")[2]
    pattern = re.compile(rf"^{re.escape(prefix)}( #\d+)?$")
    rows = Task.objects.filter(project_id=run.project_id).values_list("name", "system_tags")
    count = sum("pipeline" in (tags or []) and bool(pattern.match(name)) for name, tags in rows)
    return f"{prefix} #{count}" if count else prefix


@endpoint("pipelines.start_pipeline", verb="task.create")
def start_pipeline(call):
    source = get_task(call, call.require("task"), verb="task.read")
    queue = call.require("queue")
    args = _args(call.body.get("args"))
    with transaction.atomic():
        clone_id = tasks.clone(_as(call, "tasks.clone", "task.create", {"task": source.pk}))["id"]
        clone = get_task(call, clone_id, verb="task.create")
        parameters = copy.deepcopy(clone.hyperparameters)
        if args:
            parameters["Args"] = args
        services.edit_task(
            clone, {"hyperparameters": parameters, "name": _run_name(clone)}, force=True
        )
        queued = task_status.enqueue(
            _as(
                call,
                "tasks.enqueue",
                "task.queue",
                {"task": clone_id, "queue": queue, "status_message": "Starting pipeline"},
            )
        )
    answer = {"pipeline": clone_id, "enqueued": bool(queued.get("queued"))}
    if call.flag("verify_watched_queue") and answer["enqueued"]:
        name = Task.objects.select_related("queue").get(pk=clone_id).queue.name
        workers = live_workers(replace(call, body={}))
        answer["queue_watched"] = any(name in (worker.queues or []) for worker in workers)
    return answer


@endpoint("pipelines.delete_runs", verb="task.delete")
def delete_runs(call):
    """Delete runs (controllers, with their steps) of a pipeline's project; one run at
    least stays, as on clearml-server (400/160)."""
    project = get_project(call, call.require("project"), verb="project.read")
    asked = {str(i) for i in as_list(call.require("ids"))}
    if len(asked) > ARGS_MAX:
        raise bad_request(f"ids: at most {ARGS_MAX} runs at once", subcode=12)
    for task_id in sorted(asked):
        get_task(call, task_id)  # each one seen and deletable by the caller, or refused
    runs = set(
        visible_tasks(call)
        .filter(project=project, type=TaskType.CONTROLLER)
        .values_list("pk", flat=True)
    )
    if not runs - asked:
        raise ApiError(400, f"at least one run of project {project.pk} should be left", 160)
    body = {"force": True, "include_pipeline_steps": True}
    return task_batches.each(replace(call, body=body), task_removal.delete, sorted(runs & asked))
