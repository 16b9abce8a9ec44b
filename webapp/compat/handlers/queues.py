"""queues.*: our Queue and QueueEntry rows; `get_next_task` is how ClearML agents pull work."""

from webapp.core import execution, services
from webapp.core.models import Queue, QueueEntry

from ..documents import get_queue, iso, queue_doc, record_runner, visible_tasks
from ..query import as_list, name_filter, page_slice, project, tags_match
from ..registry import endpoint


def resolve_queue(value) -> Queue:
    """By id; clients that send a name (the agent's `--queue services`) get it by name too."""
    queue = Queue.objects.filter(pk=str(value or "")).first()
    if queue is None:
        queue = Queue.objects.filter(name=str(value or "")).first()
    return queue or get_queue(value)


@endpoint("queues.get_all", "queues.get_all_ex", verb="queue.read")
def get_all(call):
    body = call.body
    queryset = Queue.objects.all().order_by("name")
    ids = as_list(body.get("id"))
    if ids:
        queryset = queryset.filter(pk__in=[str(i) for i in ids])
    queryset = name_filter(queryset, "name", body.get("name"))
    docs = [queue_doc(queue, visible_tasks(call)) for queue in queryset]
    if body.get("system_tags"):
        docs = [d for d in docs if tags_match(d["system_tags"], body["system_tags"])]
    if body.get("tags"):
        docs = [d for d in docs if tags_match(d["tags"], body["tags"])]
    docs = docs[page_slice(body)]
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
    queue = services.get_or_create_queue(str(call.require("name")))
    return {"id": queue.id}


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
