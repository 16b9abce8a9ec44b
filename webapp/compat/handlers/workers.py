"""workers.*: ClearML agents (and our ClearML runner) shown as our Worker rows."""

import socket

from django.conf import settings
from django.utils import timezone

from webapp.core import access, execution, limits, policy
from webapp.core.models import Queue, Worker

from ..documents import iso, record_runner, visible_tasks
from ..models import WorkerExtra
from ..query import as_list, tags_match
from ..registry import endpoint
from . import worker_stats


def _queue_names(values) -> list[str]:
    names = []
    for value in as_list(values):
        queue = (
            Queue.objects.filter(pk=str(value)).first()
            or Queue.objects.filter(name=str(value)).first()
        )
        if queue is not None:
            names.append(queue.name)
    return names


def _worker_name(call) -> str:
    return str(call.get("worker") or call.worker or f"clearml-{call.key.prefix}")[:255]


@endpoint("workers.register", verb="worker.report")
def register(call):
    name = _worker_name(call)
    host = name.split(":", 1)[0] if ":" in name else socket.gethostname()
    worker = execution.worker_heartbeat(name, _queue_names(call.get("queues")), hostname=host)
    _save_extra(worker, call)
    return {}


def _save_extra(worker: Worker, call) -> None:
    body = call.body
    ip = str(call.request.META.get("REMOTE_ADDR") or "")[:64]
    extra = WorkerExtra.objects.filter(worker=worker).first()
    if extra is not None and (extra.ip, extra.registered_by_id) == (ip, call.user.pk):
        if not any(body.get(f) is not None for f in ("tags", "system_tags", "timeout")):
            return  # a status report like the one before: nothing to write
    extra = extra or WorkerExtra(worker=worker)
    extra.ip, extra.registered_by = ip, call.user
    for field in ("tags", "system_tags"):
        if body.get(field) is not None:
            setattr(extra, field, limits.tags(field, [str(t) for t in as_list(body[field])]))
    if body.get("timeout") is not None:
        extra.timeout = limits.integer("timeout", int(body["timeout"]), 1, limits.INT32_MAX)
    extra.save()


def live_workers(call) -> list[Worker]:
    """Workers still alive by their own registered timeout (else the server's), seen within
    `last_seen` seconds when asked, with the tags asked for."""
    now = timezone.now().timestamp()
    last_seen = call.get("last_seen")
    rows = []
    for worker in Worker.objects.select_related("current_task", "clearml"):
        extra = getattr(worker, "clearml", None) if _has_extra(worker) else None
        timeout = (extra.timeout if extra else None) or settings.CLEARML_WORKER_TIMEOUT_SECONDS
        age = now - worker.last_seen.timestamp()
        if age > timeout or (last_seen is not None and age > float(last_seen)):
            continue
        tags = list(extra.tags) if extra else []
        system_tags = list(extra.system_tags) if extra else []
        if call.body.get("tags") and not tags_match(tags, call.body["tags"]):
            continue
        if call.body.get("system_tags") and not tags_match(system_tags, call.body["system_tags"]):
            continue
        worker.clearml_tags, worker.clearml_system_tags = tags, system_tags
        rows.append(worker)
    return rows


def _has_extra(worker: Worker) -> bool:
    try:
        worker.clearml  # noqa: B018 - the reverse one-to-one raises when there is none
    except WorkerExtra.DoesNotExist:
        return False
    return True


@endpoint("workers.get_count", verb="worker.read")
def get_count(call):
    return {"count": len(live_workers(call))}


@endpoint("workers.status_report", verb="worker.report")
def status_report(call):
    name = _worker_name(call)
    existing = Worker.objects.filter(name=name).first()
    queues = _queue_names(call.get("queues") or call.get("queue"))
    if not queues and existing is not None:
        queues = existing.queues
    task_id = call.get("task") or None
    worker = execution.worker_heartbeat(
        name,
        queues,
        hostname=existing.hostname if existing else "",
        current_task_id=task_id,
    )
    _save_extra(worker, call)
    worker_stats.record(name, call.body)
    task = visible_tasks(call).filter(pk=str(task_id)).first() if task_id else None
    if task is not None and access.permits(
        policy.rule_for("task.report", call.user, call.key), call.user, call.key, task
    ):
        # As clearml-server: the reporting worker is the task's last worker, whom a
        # tasks.stop asks to stop it (the two-phase stop in task_status.py). Only for a
        # task it may report on (a worker key: one it pulled or started), so no key can
        # slow down the stop of a task it does not run.
        record_runner(task, name)
    return {}


@endpoint("workers.unregister", verb="worker.report")
def unregister(call):
    execution.unregister_worker(_worker_name(call))
    return {}


def worker_docs(call) -> list[dict]:
    """The live workers as ClearML's documents (workers.get_all, and a queue's workers)."""
    rows = []
    queues = {
        q.name: {"id": q.id, "name": q.name, "display_name": extra or None}
        for q, extra in (
            (q, getattr(getattr(q, "clearml", None), "display_name", ""))
            for q in Queue.objects.select_related("clearml")
        )
    }
    visible = set(
        visible_tasks(call)
        .filter(pk__in=Worker.objects.exclude(current_task=None).values("current_task"))
        .values_list("pk", flat=True)
    )
    for worker in live_workers(call):
        # Another team's task is not named, as everywhere else.
        task = worker.current_task if worker.current_task_id in visible else None
        extra = worker.clearml if _has_extra(worker) else None
        user = extra.registered_by_id if extra else None
        rows.append(
            {
                "id": worker.name,
                # clearml-server's key names the company and the user that registered it.
                "key": f"worker_pipelines_{user}_{worker.name}" if user else worker.name,
                "user": {"id": str(user)} if user else {},
                "company": {"id": "pipelines", "name": "pipelines"},
                "ip": extra.ip if extra else "",
                "register_time": iso(worker.registered),
                "last_activity_time": iso(worker.last_seen),
                "last_report_time": iso(worker.last_seen),
                "task": {"id": task.id, "name": task.name} if task else None,
                "queues": [queues.get(n, {"id": None, "name": n}) for n in worker.queues],
                "tags": worker.clearml_tags,
                "system_tags": worker.clearml_system_tags,
            }
        )
    return rows


@endpoint("workers.get_all", verb="worker.read")
def get_all(call):
    return {"workers": worker_docs(call)}
