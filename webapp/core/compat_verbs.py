"""Verbs for the ClearML wire protocol (webapp/compat).

ClearML's `force` flag bypasses the transition table and the draft-only edit rule, and its
agents poll a queue instead of receiving broker messages; these verbs do that on the same
rows, with the same conditional updates and engine hooks as the verbs in services.py.
"""

from django.db import transaction
from django.utils import timezone

from . import limits, secrets
from .choices import TaskStatus
from .errors import Conflict, InvalidInput, NotFound
from .models import Queue, QueueEntry, Task, Worker
from .services import (
    EDITABLE_ALWAYS,
    EDITABLE_WHILE_DRAFT,
    after_status_change,
    normalize_configuration,
    normalize_hyperparameters,
)

FORCE_EDITABLE = EDITABLE_WHILE_DRAFT | EDITABLE_ALWAYS | {"system_tags"}


def force_transition(task: Task, target: str, *, reason: str = "", message: str = "", extra=None):
    """Move a task to `target` whatever the table says (ClearML's `force`).

    Conditional on the status read, like `transition`; a same-state call only refreshes the
    reason and message (ClearML allows it, e.g. `started` on a running task).
    """
    if target not in TaskStatus.values:
        raise InvalidInput(f"unknown status {target!r}")
    current = task.status
    now = timezone.now()
    fields = {"status": target, "status_reason": reason[:255], "last_update": now}
    if message:
        fields["status_message"] = limits.text("message", message, limits.STATUS_MESSAGE_MAX)
    if target in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.STOPPED) and (
        current != target
    ):
        fields["completed"] = now
    fields.update(extra or {})
    with transaction.atomic():
        updated = Task.objects.filter(pk=task.pk, status=current).update(**fields)
        fresh = Task.objects.filter(pk=task.pk).first()
        if fresh is None:
            raise NotFound(f"task {task.pk} does not exist")
        if not updated:
            raise Conflict(
                f"task {task.pk} changed to {fresh.status} meanwhile", status=fresh.status
            )
        if current != target and target != TaskStatus.QUEUED:
            QueueEntry.objects.filter(task=fresh).delete()
    if current != target:
        after_status_change(fresh)
    return fresh


def edit_task_forced(task: Task, changes: dict) -> Task:
    """`edit_task` without its status rule (ClearML's `force`), plus system tags."""
    unknown = set(changes) - FORCE_EDITABLE
    if unknown:
        raise InvalidInput(f"cannot edit field(s): {', '.join(sorted(unknown))}")
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)
        for field, value in changes.items():
            # A client that read a task masked (it does not run it) and saves it whole, as a
            # pipeline controller does with the steps it clones, keeps the stored secrets.
            if field == "hyperparameters":
                value = secrets.keep_masked_hyperparameters(
                    normalize_hyperparameters(value), task.hyperparameters
                )
            elif field == "configuration":
                value = secrets.keep_masked_flat(normalize_configuration(value), task.configuration)
            else:
                value = limits.checked_task_field(field, value)
            setattr(task, field, value)
        task.last_update = timezone.now()
        task.save()
    return task


def take_next_task(queue: Queue, worker_name: str) -> Task | None:
    """Pop the first entry of `queue` whose task is still queued and mark it running.

    For workers that poll (ClearML's `queues.get_next_task`). The pop and the status change
    are conditional, so a poller and a broker-fed worker never both get one attempt. No
    lease is started: such workers do not heartbeat through our API, so the reaper leaves
    their tasks alone (last_heartbeat stays empty).
    """
    candidates = list(
        QueueEntry.objects.filter(queue=queue)
        .order_by("position", "added")
        .values_list("pk", "task_id")[:50]
    )
    for entry_pk, task_id in candidates:
        now = timezone.now()
        with transaction.atomic():
            if not QueueEntry.objects.filter(pk=entry_pk).delete()[0]:
                continue  # another poller took it
            claimed = Task.objects.filter(pk=task_id, status=TaskStatus.QUEUED).update(
                status=TaskStatus.IN_PROGRESS,
                status_reason=f"pulled by {worker_name}"[:255],
                worker=worker_name[:255],
                started=now,
                last_heartbeat=None,
                last_update=now,
            )
            if not claimed:
                continue  # no longer queued: its entry was stale
            Worker.objects.filter(name=worker_name).update(current_task_id=task_id, last_seen=now)
            task = Task.objects.get(pk=task_id)
        after_status_change(task)
        return task
    return None


def attach_artifact_bytes(artifact, storage_key: str, size: int, sha256: str):
    """Mark an artifact ready whose bytes were stored under `storage_key` by another route
    (ClearML's file server), recording the size and sha256 of the bytes actually stored."""
    from .choices import ArtifactState
    from .models import Artifact

    Artifact.objects.filter(pk=artifact.pk).update(
        state=ArtifactState.READY,
        storage_key=storage_key,
        size=size,
        sha256=sha256,
        updated=timezone.now(),
    )
    artifact.refresh_from_db()
    return artifact
