"""tasks.started/stopped/completed/failed/..., enqueue/dequeue/reset/stop: status changes with
ClearML's rules (status.py) carried out by our services."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.core import access, services, status
from webapp.core.choices import TaskStatus
from webapp.core.models import Task, Worker

from ..documents import artifact_doc, extra_of, get_task, iso, record_ping, record_runner
from ..envelope import ApiError
from ..registry import endpoint
from ..status import change_status, check_allowed
from ..task_models import check_removable, clean_up, output_model
from .queues import resolve_queue
from .task_outputs import upsert_artifact

S = TaskStatus


def _result(task: Task, **more) -> dict:
    fields = {
        "status": task.status,
        "status_reason": task.status_reason,
        "status_message": task.status_message,
        "status_changed": iso(task.last_update),
        "last_update": iso(task.last_update),
    }
    return {"updated": 1, "fields": fields, **more}


def _set_status(call, target: str, default_reason: str) -> dict:
    task = get_task(call, call.require("task"))
    task = change_status(
        task,
        target,
        force=call.flag("force"),
        reason=str(call.get("status_reason", default_reason)),
        message=str(call.get("status_message", "")),
    )
    if target == S.IN_PROGRESS:
        record_runner(task, call.worker, call.key)
    return _result(task)


@endpoint("tasks.started", verb="task.report")
def started(call):
    return _set_status(call, S.IN_PROGRESS, "started")


@endpoint("tasks.completed", verb="task.report")
def completed(call):
    result = _set_status(call, S.COMPLETED, "completed")
    if call.flag("publish"):
        task = get_task(call, call.body["task"], verb="task.publish")
        return {**publish_task(call, task, force=call.flag("force")), "published": 1}
    return {**result, "published": 0}


@endpoint("tasks.failed", verb="task.report")
def failed(call):
    return _set_status(call, S.FAILED, "failed")


@endpoint("tasks.stopped", "tasks.close", verb="task.report")
def stopped(call):
    return _set_status(call, S.STOPPED, "stopped")


def publish_task(call, task: Task, *, force: bool, publish_model: bool = True) -> dict:
    """Publish `task` by ClearML's rules and, with `publish_model`, its output model with it
    (clearml-server marks that model ready first; here both happen or neither)."""
    check_allowed(task, S.PUBLISHED, force)
    with transaction.atomic():
        model = output_model(task) if publish_model else None
        if model is not None and not model.ready:
            model.ready = True
            model.last_update = timezone.now()
            model.save(update_fields=["ready", "last_update"])
        task = change_status(
            task,
            S.PUBLISHED,
            force=force,
            reason=str(call.get("status_reason", "published")),
            message=str(call.get("status_message", "")),
        )
    return _result(task)


@endpoint("tasks.publish", verb="task.publish")
def publish(call):
    task = get_task(call, call.require("task"))
    return publish_task(
        call, task, force=call.flag("force"), publish_model=call.flag("publish_model", True)
    )


@endpoint("tasks.ping", verb="task.report")
def ping(call):
    task = get_task(call, call.require("task"))
    record_runner(task, call.worker)
    record_ping(task)
    return {}


@endpoint("tasks.stop", verb="task.abort")
def stop(call):
    """Stop at once: a worker of ours sees it on its next heartbeat, a ClearML agent (or our
    ClearML runner) on its next status poll, and kills the process either way."""
    task = get_task(call, call.require("task"))
    reason = str(call.get("status_reason", "stopped by user"))
    if not call.flag("force") and _runner_alive(task):
        # ClearML's two-phase stop: the agent running it sees `stopping`, kills the
        # process and reports `stopped` itself (so its last console lines still arrive).
        task = change_status(task, S.IN_PROGRESS, reason=reason, message="stopping")
    elif task.status in (S.QUEUED, S.IN_PROGRESS, S.CREATED):
        task = services.abort_task(task, reason)
    elif task.status != S.STOPPED and not call.flag("force"):
        raise ApiError(400, f"Invalid task status: task {task.id} is {task.status}", 110)
    if call.flag("include_pipeline_steps"):
        for child in Task.objects.filter(parent=task, status__in=(S.QUEUED, S.IN_PROGRESS)):
            # Only the steps this caller may stop (a child may live in another team's project).
            if access.visible_tasks(call.user, call.key).filter(pk=child.pk).exists() and (
                access.permits(call.rule, call.user, call.key, child)
            ):
                services.abort_task(child, "pipeline stopped")
    return _result(task)


def _runner_alive(task: Task) -> bool:
    """A running task (not a dev-machine run) whose ClearML agent reports it as its task
    and is still alive: clearml-server's condition for stopping in two phases."""
    extra = extra_of(task)
    if task.status != S.IN_PROGRESS or "development" in (task.system_tags or []):
        return False
    if not extra.last_worker:
        return False
    alive_after = timezone.now() - timedelta(seconds=settings.CLEARML_WORKER_TIMEOUT_SECONDS)
    return Worker.objects.filter(
        name=extra.last_worker, current_task=task, last_seen__gte=alive_after
    ).exists()


@endpoint("tasks.reset", verb="task.reset")
def reset(call):
    """Back to draft with outputs cleared (our reset_task), plus ClearML's own fields."""
    task = get_task(call, call.require("task"))
    if task.status == S.PUBLISHED:
        raise ApiError(400, f"Invalid task status: task {task.id} is published", 110)
    removed = int(task.status == S.QUEUED)
    force = call.flag("force")
    check_removable(task, force)
    if task.status == S.IN_PROGRESS:
        # clearml-server resets a running task as it is; whoever runs it sees it leave
        # `in_progress` (our worker on its heartbeat, an agent on its status poll).
        task = services.abort_task(task, "reset")
    with transaction.atomic():
        cleanup = clean_up(
            task,
            force=True,
            delete_output_models=call.flag("delete_output_models", True),
            deleting=False,
        )
        # Input artifacts are part of the task's definition, not of what it reported.
        inputs = [
            doc
            for doc in (artifact_doc(a) for a in task.artifacts.all())
            if doc.get("mode") == "input" and not call.flag("clear_all")
        ]
        # ClearML resets a draft too (clearing what it reported).
        task = services.reset_task(task, draft_too=True)
        for item in inputs:
            upsert_artifact(call, task, item)
        extra = extra_of(task)
        extra.task_models = {"input": (extra.task_models or {}).get("input", []), "output": []}
        extra.last_worker = ""
        extra.last_iteration = 0
        if call.flag("clear_all"):
            extra.execution = {}
            extra.script = {}
            task = services.edit_task(task, {"script": {}}, force=True)
        extra.save()
    return _result(
        task,
        dequeued={"removed": removed},
        events={},
        **cleanup.answer(call.flag("return_file_urls")),
    )


@endpoint("tasks.enqueue", verb="task.queue")
def enqueue(call):
    task = get_task(call, call.require("task"))
    if call.get("queue"):
        queue = resolve_queue(call.body["queue"])
    else:
        queue = services.get_or_create_queue(str(call.get("queue_name") or "default"))
    if task.status == S.QUEUED:
        return {"queued": 1, **_result(task)}
    check_allowed(task, S.QUEUED, call.flag("force"))
    with transaction.atomic():
        if task.status != S.CREATED:
            # ClearML enqueues stopped and failed tasks as they are (pipe.start() enqueues
            # its stopped controller); ours go through draft, keeping their outputs.
            task = status.change(task, S.CREATED, reason="re-enqueued", force=True)
        task = services.enqueue_task(task, queue.name)
        # clearml-server drops `development` when a task is queued: it is no longer a
        # dev-machine run, so the SDK will not reuse or abort it as one.
        if "development" in (task.system_tags or []):
            tags = [t for t in task.system_tags if t != "development"]
            task = services.edit_task(task, {"system_tags": tags}, force=True)
    return {"queued": 1, **_result(task)}


@endpoint("tasks.dequeue", verb="task.queue")
def dequeue(call):
    task = get_task(call, call.require("task"))
    new_status = call.get("new_status") or S.CREATED
    if task.status != S.QUEUED:
        # The agent dequeues a task it already runs (new_status in_progress): nothing to do.
        return {"dequeued": 0, **_result(task)}
    if new_status == S.CREATED:
        task = services.dequeue_task(task)
    else:
        task = change_status(task, new_status, force=True, reason="dequeued")
    return {"dequeued": 1, **_result(task)}
