"""queues.*: our Queue and QueueEntry rows; `get_next_task` is how ClearML agents pull work."""

from django.utils import timezone

from webapp.core import execution, limits, policy, queue_verbs, services
from webapp.core.choices import TaskStatus
from webapp.core.models import Queue, QueueEntry, Task

from ..documents import (
    get_queue,
    get_task,
    iso,
    queue_doc,
    queue_extra_of,
    record_runner,
    visible_tasks,
)
from ..envelope import ApiError
from ..query import as_list, name_filter, page_slice, project, tags_match
from ..registry import endpoint
from .workers import worker_docs


def resolve_queue(value) -> Queue:
    """By id; clients that send a name (the agent's `--queue services`) get it by name too."""
    queue = Queue.objects.filter(pk=str(value or "")).first()
    if queue is None:
        queue = Queue.objects.filter(name=str(value or "")).first()
    return queue or get_queue(value)


@endpoint("queues.get_all", "queues.get_all_ex", verb="queue.read")
def get_all(call):
    body = call.body
    queryset = Queue.objects.select_related("clearml").order_by("name")
    ids = as_list(body.get("id"))
    if ids:
        queryset = queryset.filter(pk__in=[str(i) for i in ids])
    queryset = name_filter(queryset, "name", body.get("name"))
    max_entries = body.get("max_task_entries")
    max_entries = int(max_entries) if max_entries is not None else None
    docs = [queue_doc(queue, visible_tasks(call), max_entries) for queue in queryset]
    if not ids and not call.flag("search_hidden") and not body.get("name"):
        # clearml-server's `hidden_tags`: queues of its Kubernetes glue stay out of lists.
        docs = [d for d in docs if not set(d["system_tags"]) & HIDDEN_SYSTEM_TAGS]
    if body.get("system_tags"):
        docs = [d for d in docs if tags_match(d["system_tags"], body["system_tags"])]
    if body.get("tags"):
        docs = [d for d in docs if tags_match(d["tags"], body["tags"])]
    docs = docs[page_slice(body)]
    if call.name == "queues.get_all_ex":
        # As clearml-server's: get_all_ex names each entry's task, get_all only its id.
        names = dict(
            Task.objects.filter(pk__in={e["task"] for d in docs for e in d["entries"]}).values_list(
                "pk", "name"
            )
        )
        workers = worker_docs(call)
        for doc in docs:
            for entry in doc["entries"]:
                entry["task"] = {"id": entry["task"], "name": names.get(entry["task"], "")}
            # And the live workers listening on it.
            doc["workers"] = [
                {"name": w["id"], "ip": w["ip"], "key": w["key"], "task": w["task"]}
                for w in workers
                if any(q["id"] == doc["id"] for q in w["queues"])
            ]
    return {"queues": [project(doc, body.get("only_fields")) for doc in docs]}


@endpoint("queues.get_by_id", verb="queue.read")
def get_by_id(call):
    return {"queue": queue_doc(get_queue(call.require("queue")), visible_tasks(call))}


@endpoint("queues.get_default", verb="queue.create")
def get_default(call):
    queue = services.get_or_create_queue("default")
    return {"id": queue.id, "name": queue.name}


@endpoint("queues.create", verb="queue.create")
def create(call):
    name = services.checked_queue_name(call.require("name"), "name")
    existed = Queue.objects.filter(name=name).exists()
    queue = services.get_or_create_queue(name)
    if any(call.body.get(f) is not None for f in EXTRA_FIELDS):
        # Naming an existing queue with new fields changes it: that is managing it.
        if existed and not _may_manage(call):
            raise ApiError(403, f"this key may not change queue {queue.name}", 21)
        save_extra(queue, call.body)
    return {"id": queue.id}


EXTRA_FIELDS = ("display_name", "tags", "system_tags", "metadata")
HIDDEN_SYSTEM_TAGS = {"k8s-glue"}


def _may_manage(call) -> bool:
    try:
        policy.rule_for("queue.manage", call.user, call.key)
    except policy.Forbidden:
        return False
    return True


def _metadata(value) -> dict:
    if isinstance(value, list):
        value = {str(m.get("key")): m for m in value if isinstance(m, dict)}
    limits.json_object("metadata", value)
    return {
        str(key): {
            "key": str(key),
            "type": str(entry.get("type") or ""),
            "value": str(entry.get("value") or ""),
        }
        for key, entry in value.items()
        if isinstance(entry, dict)
    }


def save_extra(queue: Queue, body: dict) -> dict:
    """Store a create/update's ClearML-only fields; the fields it changed."""
    extra = queue_extra_of(queue)
    if extra._state.adding and queue.name == "default":
        extra.system_tags = ["default"]
    fields = {}
    if body.get("display_name") is not None:
        extra.display_name = limits.text("display_name", str(body["display_name"]), 255)
        fields["display_name"] = extra.display_name
    for field in ("tags", "system_tags"):
        if body.get(field) is not None:
            setattr(extra, field, limits.tags(field, [str(t) for t in as_list(body[field])]))
            fields[field] = getattr(extra, field)
    if body.get("metadata") is not None:
        extra.metadata = _metadata(body["metadata"])
        fields["metadata"] = extra.metadata
    extra.last_update = timezone.now()
    extra.save()
    return fields


@endpoint("queues.update", verb="queue.manage")
def update(call):
    queue = get_queue(call.require("queue"))
    if call.body.get("name") is not None and str(call.body["name"]) != queue.name:
        raise ApiError(400, "renaming a queue is not supported here: its name is its broker's")
    fields = save_extra(queue, call.body)
    return {"updated": 1, "fields": fields}


@endpoint("queues.add_or_update_metadata", verb="queue.manage")
def add_or_update_metadata(call):
    queue = get_queue(call.require("queue"))
    extra = queue_extra_of(queue)
    current = {} if call.flag("replace_metadata") else dict(extra.metadata or {})
    save_extra(queue, {"metadata": {**current, **_metadata(call.require("metadata"))}})
    return {"updated": 1}


@endpoint("queues.delete_metadata", verb="queue.manage")
def delete_metadata(call):
    queue = get_queue(call.require("queue"))
    keys = {str(k) for k in as_list(call.require("keys"))}
    current = dict(queue_extra_of(queue).metadata or {})
    save_extra(queue, {"metadata": {k: v for k, v in current.items() if k not in keys}})
    return {"updated": 1}


@endpoint("queues.delete", verb="queue.manage")
def delete(call):
    queue_verbs.delete_queue(get_queue(call.require("queue")), force=call.flag("force"))
    return {"deleted": 1}


@endpoint("queues.clear_queue", verb="queue.manage")
def clear_queue(call):
    return {"removed_tasks": queue_verbs.clear_queue(get_queue(call.require("queue")))}


def _entry_task(call):
    """The queued task a call names, in the queue it names (400 otherwise)."""
    queue = get_queue(call.require("queue"))
    task = get_task(call, call.require("task"))
    entry = QueueEntry.objects.filter(task=task, queue=queue).first()
    if entry is None:
        raise ApiError(400, f"task {task.id} is not in queue {queue.id}", 702)
    return queue, task


@endpoint("queues.add_task", verb="task.queue")
def add_task(call):
    queue = get_queue(call.require("queue"))
    task = get_task(call, call.require("task"))
    if task.status == TaskStatus.QUEUED:
        services.dequeue_task(task)
        task.refresh_from_db()
    services.enqueue_task(task, queue.name)
    return {"added": 1}


@endpoint("queues.remove_task", verb="task.queue")
def remove_task(call):
    """Out of the queue, back to draft: a task of ours waits in a queue exactly while it is
    `queued`, so ClearML's removal that leaves its status is not kept apart here."""
    _, task = _entry_task(call)
    services.dequeue_task(task)
    return {"removed": 1}


def _index_of(task) -> int:
    entry = QueueEntry.objects.get(task=task)
    order = QueueEntry.objects.filter(queue_id=entry.queue_id).order_by("position", "added", "pk")
    return list(order.values_list("pk", flat=True)).index(entry.pk)


def _move(call, to) -> dict:
    _, task = _entry_task(call)
    count = int(call.get("count", 1))
    return {"position": queue_verbs.move_queue_entry_to(task, to(_index_of(task), count))}


@endpoint("queues.move_task_to_front", verb="task.queue")
def move_task_to_front(call):
    return _move(call, lambda index, count: 0)


@endpoint("queues.move_task_to_back", verb="task.queue")
def move_task_to_back(call):
    return _move(call, lambda index, count: 2**31)


@endpoint("queues.move_task_forward", verb="task.queue")
def move_task_forward(call):
    return _move(call, lambda index, count: index - count)


@endpoint("queues.move_task_backward", verb="task.queue")
def move_task_backward(call):
    return _move(call, lambda index, count: index + count)


@endpoint("queues.peek_task", verb="queue.read")
def peek_task(call):
    queue = get_queue(call.require("queue"))
    entry = (
        QueueEntry.objects.filter(queue=queue, task__in=visible_tasks(call).values("pk"))
        .order_by("position", "added", "pk")
        .first()
    )
    return {"task": entry.task_id if entry else None}


@endpoint("queues.get_num_entries", verb="queue.read")
def get_num_entries(call):
    queue = get_queue(call.require("queue"))
    return {"num": QueueEntry.objects.filter(queue=queue).count()}


@endpoint("queues.get_next_task", verb="task.claim")
def get_next_task(call):
    """Pop the next task and mark it running for the calling worker (see take_next_task)."""
    queue = resolve_queue(call.require("queue"))
    worker = call.worker or str(call.get("worker", "")) or f"clearml-{call.key.prefix}"
    task = execution.claim_from_queue(queue, worker)
    if task is None:
        return {}
    record_runner(task, call.worker, call.key)
    return {
        "entry": {"task": task.id, "added": iso(task.last_update)},
        "task_info": {"company": "pipelines", "user": str(task.created_by_id or "")},
    }
