"""Queue verbs beyond enqueue and dequeue: clearing and deleting a queue, and placing a
waiting task at a given index (ClearML's queues.* calls them; services.py has the rest)."""

from django.db import transaction

from .errors import Conflict
from .models import Queue, QueueEntry, Task
from .services import DEFAULT_QUEUES, dequeue_task


def clear_queue(queue: Queue) -> list[str]:
    """Every task waiting in `queue` back to draft; the ids of those it moved."""
    moved = []
    for entry in QueueEntry.objects.filter(queue=queue).select_related("task"):
        try:
            dequeue_task(entry.task)
        except Conflict:
            continue  # claimed meanwhile: it is no longer waiting here
        moved.append(entry.task_id)
    return moved


def delete_queue(queue: Queue, force: bool = False) -> list[str]:
    """Delete a queue; with `force`, its waiting tasks go back to drafts first (without it,
    a queue that has any is refused). The queues every installation has stay."""
    if queue.name in DEFAULT_QUEUES:
        raise Conflict(f"queue {queue.name!r} is one every installation has; it stays")
    if not force and QueueEntry.objects.filter(queue=queue).exists():
        raise Conflict(f"queue {queue.name!r} has waiting tasks: use force to dequeue them")
    moved = clear_queue(queue)
    with transaction.atomic():
        if QueueEntry.objects.filter(queue=queue).exists():
            raise Conflict(f"queue {queue.name!r} got a task meanwhile")
        Queue.objects.filter(pk=queue.pk).delete()
    return moved


def move_queue_entry_to(task: Task, index: int) -> int:
    """Put a queued task at `index` (0 = next to run, clipped to the queue's length) in its
    queue, keeping the others' order; returns the index it now has."""
    with transaction.atomic():
        entry = QueueEntry.objects.select_for_update().filter(task=task).first()
        if entry is None:
            raise Conflict(f"task {task.id} is not waiting in a queue", status=task.status)
        entries = [
            e
            for e in QueueEntry.objects.select_for_update()
            .filter(queue_id=entry.queue_id)
            .order_by("position", "added", "pk")
            if e.pk != entry.pk
        ]
        index = max(0, min(int(index), len(entries)))
        entries.insert(index, entry)
        for position, item in enumerate(entries, start=1):
            if item.position != position:
                QueueEntry.objects.filter(pk=item.pk).update(position=float(position))
    return index
