"""workers.*: ClearML agents (and our ClearML runner) shown as our Worker rows."""

import socket

from django.conf import settings
from django.utils import timezone

from webapp.core import access, execution, policy
from webapp.core.models import Queue, Worker

from ..documents import iso, record_runner, visible_tasks
from ..query import as_list
from ..registry import endpoint


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
    execution.worker_heartbeat(name, _queue_names(call.get("queues")), hostname=host)
    return {}


@endpoint("workers.status_report", verb="worker.report")
def status_report(call):
    name = _worker_name(call)
    existing = Worker.objects.filter(name=name).first()
    queues = _queue_names(call.get("queues") or call.get("queue"))
    if not queues and existing is not None:
        queues = existing.queues
    task_id = call.get("task") or None
    execution.worker_heartbeat(
        name,
        queues,
        hostname=existing.hostname if existing else "",
        current_task_id=task_id,
    )
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


@endpoint("workers.get_all", verb="worker.read")
def get_all(call):
    alive_after = timezone.now().timestamp() - settings.CLEARML_WORKER_TIMEOUT_SECONDS
    rows = []
    queues = {q.name: q.id for q in Queue.objects.all()}
    visible = set(
        visible_tasks(call)
        .filter(pk__in=Worker.objects.exclude(current_task=None).values("current_task"))
        .values_list("pk", flat=True)
    )
    for worker in Worker.objects.select_related("current_task"):
        if worker.last_seen.timestamp() < alive_after:
            continue
        # Another team's task is not named, as everywhere else.
        task = worker.current_task if worker.current_task_id in visible else None
        rows.append(
            {
                "id": worker.name,
                "user": {},
                "company": {"id": "pipelines", "name": "pipelines"},
                "ip": "",
                "register_time": iso(worker.registered),
                "last_activity_time": iso(worker.last_seen),
                "last_report_time": iso(worker.last_seen),
                "task": {"id": task.id, "name": task.name} if task else None,
                "queues": [{"id": queues.get(n), "name": n} for n in worker.queues],
            }
        )
    return {"workers": rows}
