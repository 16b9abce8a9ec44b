"""The verbs of the domain. The only code that changes tasks or starts background work.

Status changes are conditional UPDATEs against the row, so two callers racing (a worker's
second delivery, the reaper and a late heartbeat) cannot both win.
"""

import copy
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from . import access, broker, secrets
from .choices import (
    TASK_TRANSITIONS,
    ApiKeyKind,
    TaskStatus,
    TaskType,
    can_transition,
)
from .errors import Conflict, InvalidInput, NotFound
from .keys import create_api_key, revoke_task_keys, system_user
from .models import (
    LogLine,
    Project,
    Queue,
    QueueEntry,
    ReceivedBatch,
    Task,
    Worker,
)

logger = logging.getLogger(__name__)

EDITABLE_WHILE_DRAFT = {
    "name",
    "type",
    "comment",
    "script",
    "hyperparameters",
    "configuration",
    # How a worker runs it: attempts before the reaper gives up, seconds before it is killed.
    "max_attempts",
    "time_limit",
}
EDITABLE_ALWAYS = {"tags", "runtime", "comment"}
# A task running on a dev machine records its own parameters and script as it goes.
EDITABLE_WHILE_RUNNING = {"script", "hyperparameters", "configuration"}
DEFAULT_QUEUES = ("default", "services")


# ---------------------------------------------------------------- projects and queues


def get_or_create_project(name: str, user=None, team=None) -> Project:
    """The project called `name`, created (in the user's team, see access.py) if missing.

    An existing project the user may not see is refused, so nobody adds tasks to another
    team's project by naming it.
    """
    name = (name or "").strip()
    if not name:
        raise InvalidInput("project name must not be empty")
    if len(name) > 255:
        raise InvalidInput("project name is longer than 255 characters")
    existing = Project.objects.filter(name=name).first()
    if existing is not None:
        return access.check_project_access(existing, user)
    defaults = {"created_by": user, "team": access.team_for_new_project(user, team)}
    try:
        with transaction.atomic():
            project, _ = Project.objects.get_or_create(name=name, defaults=defaults)
    except IntegrityError:
        project = Project.objects.get(name=name)
    return access.check_project_access(project, user)


def get_or_create_queue(name: str) -> Queue:
    name = (name or "").strip()
    if not name or len(name) > 100 or not all(c.isalnum() or c in "-_." for c in name):
        raise InvalidInput(f"invalid queue name {name!r}: use letters, digits, '-', '_', '.'")
    try:
        with transaction.atomic():
            queue, _ = Queue.objects.get_or_create(name=name)
    except IntegrityError:
        queue = Queue.objects.get(name=name)
    return queue


def ensure_default_queues() -> None:
    for name in DEFAULT_QUEUES:
        get_or_create_queue(name)


# ---------------------------------------------------------------- task lifecycle


def create_task(
    *,
    user,
    project_name: str,
    name: str,
    task_type: str = TaskType.TRAINING,
    script: dict | None = None,
    hyperparameters: dict | None = None,
    configuration: dict | None = None,
    tags: list | None = None,
    comment: str = "",
    parent: Task | None = None,
    start_running: bool = False,
) -> Task:
    """Create a draft; `start_running` marks it running at once (a script run locally)."""
    if not (name or "").strip():
        raise InvalidInput("task name must not be empty")
    if task_type not in TaskType.values:
        raise InvalidInput(f"unknown task type {task_type!r}", allowed=TaskType.values)
    project = get_or_create_project(project_name, user)
    now = timezone.now()
    return Task.objects.create(
        project=project,
        name=name.strip(),
        type=task_type,
        script=script or {},
        hyperparameters=normalize_hyperparameters(hyperparameters or {}),
        configuration=normalize_configuration(configuration or {}),
        tags=list(tags or []),
        comment=comment,
        parent=parent,
        created_by=user,
        status=TaskStatus.IN_PROGRESS if start_running else TaskStatus.CREATED,
        started=now if start_running else None,
        last_heartbeat=None,
        created=now,
        last_update=now,
    )


def normalize_hyperparameters(raw: dict) -> dict:
    """{section: {name: value | {value, type, description}}} with values kept as strings."""
    if not isinstance(raw, dict):
        raise InvalidInput("hyperparameters must be an object of sections")
    result: dict = {}
    for section, params in raw.items():
        if not isinstance(params, dict):
            raise InvalidInput(f"hyperparameter section {section!r} must be an object")
        result[str(section)] = {
            str(key): _normalize_param(f"{section}/{key}", value) for key, value in params.items()
        }
    return result


def normalize_configuration(raw: dict) -> dict:
    if not isinstance(raw, dict):
        raise InvalidInput("configuration must be an object")
    return {str(key): _normalize_param(key, value) for key, value in raw.items()}


def _normalize_param(label: str, value) -> dict:
    if isinstance(value, dict) and "value" in value:
        return {
            "value": _as_text(value.get("value")),
            "type": str(value.get("type") or ""),
            "description": str(value.get("description") or ""),
        }
    if isinstance(value, dict | list):
        raise InvalidInput(f"parameter {label!r}: give {{value, type}} or a plain value")
    return {"value": _as_text(value), "type": _type_name(value), "description": ""}


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _type_name(value) -> str:
    if value is None:
        return ""
    return type(value).__name__


def edit_task(task: Task, changes: dict) -> Task:
    """Change fields of a task. Definition fields only while it is a draft (or running itself)."""
    unknown = set(changes) - EDITABLE_WHILE_DRAFT - EDITABLE_ALWAYS
    if unknown:
        raise InvalidInput(f"cannot edit field(s): {', '.join(sorted(unknown))}")
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)
        for field, value in changes.items():
            if field in EDITABLE_ALWAYS:
                pass
            elif task.status == TaskStatus.CREATED:
                pass
            elif task.status == TaskStatus.IN_PROGRESS and field in EDITABLE_WHILE_RUNNING:
                pass
            else:
                raise Conflict(
                    f"task {task.id} is {task.status}: {field} can only be edited on a draft",
                    status=task.status,
                )
            if field == "hyperparameters":
                # A masked secret read back and saved unchanged keeps its stored value.
                value = secrets.keep_masked_hyperparameters(
                    normalize_hyperparameters(value), task.hyperparameters
                )
            elif field == "configuration":
                value = secrets.keep_masked_flat(normalize_configuration(value), task.configuration)
            elif field == "tags":
                if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                    raise InvalidInput("tags must be a list of strings")
            elif field in ("script", "runtime") and not isinstance(value, dict):
                raise InvalidInput(f"{field} must be an object")
            elif field == "type" and value not in TaskType.values:
                raise InvalidInput(f"unknown task type {value!r}")
            elif field == "max_attempts" and not (isinstance(value, int) and 1 <= value <= 100):
                raise InvalidInput("max_attempts must be an integer from 1 to 100")
            elif field == "time_limit" and value is not None and not value > 0:
                raise InvalidInput("time_limit must be a positive number of seconds, or null")
            setattr(task, field, value)
        task.last_update = timezone.now()
        task.save()
    return task


def set_hyperparameters(task: Task, values: dict, replace: bool = False) -> Task:
    """Merge (or replace) hyperparameter sections; same draft/running rule as edit_task."""
    incoming = normalize_hyperparameters(values)
    if replace:
        merged = incoming
    else:
        merged = copy.deepcopy(task.hyperparameters)
        for section, params in incoming.items():
            merged.setdefault(section, {}).update(params)
    return edit_task(task, {"hyperparameters": merged})


def transition(
    task: Task,
    target: str,
    *,
    reason: str = "",
    message: str = "",
    expected: tuple[str, ...] | None = None,
    attempt: int | None = None,
    extra: dict | None = None,
) -> Task:
    """Move a task to `target` if the table allows it from the row's current status.

    The UPDATE is conditional on the status read, so a concurrent change makes it fail
    with 409 instead of overwriting.
    """
    allowed_from = [s for s, targets in TASK_TRANSITIONS.items() if target in targets]
    if expected is not None:
        allowed_from = [s for s in allowed_from if s in expected]
    now = timezone.now()
    fields = {"status": target, "status_reason": reason[:255], "last_update": now}
    if message:
        fields["status_message"] = message
    if target in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.STOPPED):
        fields["completed"] = now
    fields.update(extra or {})
    query = Q(pk=task.pk, status__in=allowed_from)
    if attempt is not None:
        query &= Q(attempt=attempt)
    updated = Task.objects.filter(query).update(**fields)
    current = Task.objects.filter(pk=task.pk).first()
    if current is None:
        raise NotFound(f"task {task.pk} does not exist")
    if not updated:
        if attempt is not None and current.attempt != attempt:
            raise Conflict(
                f"task {task.pk} attempt {attempt} is no longer current "
                f"(current attempt {current.attempt}, status {current.status})",
                status=current.status,
            )
        raise Conflict(
            f"task {task.pk} is {current.status}; cannot move it to {target}",
            status=current.status,
        )
    _after_status_change(current)
    return current


def _after_status_change(task: Task) -> None:
    """Let the pipeline engine advance when a step task changes state."""
    from . import engine_hooks

    engine_hooks.task_status_changed(task)


def mark_started(task: Task) -> Task:
    return transition(task, TaskStatus.IN_PROGRESS, reason="started", expected=("created",))


def mark_completed(task: Task, reason: str = "", message: str = "") -> Task:
    return transition(task, TaskStatus.COMPLETED, reason=reason or "completed", message=message)


def mark_failed(task: Task, reason: str = "", message: str = "") -> Task:
    return transition(task, TaskStatus.FAILED, reason=reason or "failed", message=message)


def publish_task(task: Task) -> Task:
    return transition(task, TaskStatus.PUBLISHED, reason="published")


def make_draft(task: Task) -> Task:
    """execute_remotely() on a dev machine: the local run becomes a draft base task."""
    return transition(
        task,
        TaskStatus.CREATED,
        reason="registered as a draft",
        expected=(TaskStatus.IN_PROGRESS, TaskStatus.CREATED),
        extra={"started": None, "completed": None, "worker": ""},
    )


def clone_task(
    source: Task,
    *,
    user,
    name: str | None = None,
    project_name: str | None = None,
    parent: Task | None = None,
    hyperparameters: dict | None = None,
    configuration: dict | None = None,
    tags: list | None = None,
    project: Project | None = None,
    time_limit: float | None = None,
) -> Task:
    """A new draft with deep copies of the source's definition; parent is the source."""
    params = copy.deepcopy(source.hyperparameters)
    for section, values in normalize_hyperparameters(hyperparameters or {}).items():
        params.setdefault(section, {}).update(values)
    config = copy.deepcopy(source.configuration)
    config.update(normalize_configuration(configuration or {}))
    if project is None:
        project = get_or_create_project(project_name, user) if project_name else source.project
    now = timezone.now()
    return Task.objects.create(
        project=project,
        name=(name or source.name).strip(),
        type=source.type,
        script=copy.deepcopy(source.script),
        hyperparameters=params,
        configuration=config,
        tags=list(tags if tags is not None else source.tags),
        comment=source.comment,
        parent=parent or source,
        max_attempts=source.max_attempts,
        time_limit=time_limit if time_limit is not None else source.time_limit,
        created_by=user,
        created=now,
        last_update=now,
    )


def enqueue_task(task: Task, queue_name: str = "default") -> Task:
    """Draft -> queued, then publish (task id, attempt) to the broker after commit."""
    queue = get_or_create_queue(queue_name)
    with transaction.atomic():
        task = transition(
            task,
            TaskStatus.QUEUED,
            reason=f"enqueued on {queue.name}",
            expected=(TaskStatus.CREATED,),
            extra={"queue": queue, "attempt": F("attempt") + 1, "worker": ""},
        )
        # Positions are enqueue times, so appending needs no read of the queue.
        now = timezone.now()
        QueueEntry.objects.update_or_create(
            task=task,
            defaults={
                "queue": queue,
                "position": now.timestamp(),
                "added": now,
                "last_published": now,
            },
        )
        _publish_on_commit(task)
    return task


def _publish_on_commit(task: Task) -> None:
    """Publish after commit. Callers stamp the entry as published when they write it (one
    write fewer on the hot path); a publish that fails clears the stamp, so the reconciler
    sends it again at its next sweep."""
    task_id, attempt, queue_name = task.id, task.attempt, task.queue.name

    def publish():
        if not broker.publish_run(task_id, attempt, queue_name):
            QueueEntry.objects.filter(task_id=task_id).update(last_published=None)

    transaction.on_commit(publish)


def dequeue_task(task: Task) -> Task:
    with transaction.atomic():
        task = transition(
            task, TaskStatus.CREATED, reason="dequeued", expected=(TaskStatus.QUEUED,)
        )
        QueueEntry.objects.filter(task=task).delete()
    return task


def abort_task(task: Task, reason: str = "aborted by user") -> Task:
    """Stop a queued or running task. A running step's worker sees it on its next heartbeat
    and kills the step's process group; its late report is refused because the row moved."""
    with transaction.atomic():
        task = transition(
            task,
            TaskStatus.STOPPED,
            reason=reason,
            expected=(TaskStatus.QUEUED, TaskStatus.IN_PROGRESS, TaskStatus.CREATED),
        )
        QueueEntry.objects.filter(task=task).delete()
        revoke_task_keys(task)
        # The worker will not report this attempt, so it is not "running" it any more.
        Worker.objects.filter(current_task=task).update(current_task=None)
    return task


def reset_task(task: Task) -> Task:
    """Back to draft with every output cleared (console, results, artifacts)."""
    from .storage import delete_task_outputs

    if task.status == TaskStatus.IN_PROGRESS:
        raise Conflict(f"task {task.id} is running: abort it before resetting", status=task.status)
    with transaction.atomic():
        task = transition(
            task,
            TaskStatus.CREATED,
            reason="reset",
            expected=tuple(s for s in TaskStatus.values if s != TaskStatus.PUBLISHED),
            extra={
                "started": None,
                "completed": None,
                "worker": "",
                "last_heartbeat": None,
                "last_metrics": {},
                "status_message": "",
                "runtime": {},
            },
        )
        QueueEntry.objects.filter(task=task).delete()
        delete_task_outputs(task)
    return task


# ---------------------------------------------------------------- execution on workers


def claim_task(
    task_id: str, attempt: int, worker_name: str, claim_id: str = ""
) -> tuple[Task, str] | None:
    """queued -> in_progress for exactly this attempt; None if someone else has it.

    Returns the task and a fresh key scoped to it, which the step subprocess uses.
    `claim_id` (one per message the worker handles) makes a retried claim whose answer was
    lost get the same answer, where a second delivery, with its own id, gets nothing.
    """
    now = timezone.now()
    reason = (f"claimed by {worker_name}" + (f" #{claim_id}" if claim_id else ""))[:255]
    with transaction.atomic():
        claimed = Task.objects.filter(pk=task_id, status=TaskStatus.QUEUED, attempt=attempt).update(
            status=TaskStatus.IN_PROGRESS,
            status_reason=reason,
            worker=worker_name,
            started=now,
            last_heartbeat=now,
            last_update=now,
        )
        if not claimed:
            retried = claim_id and Task.objects.filter(
                pk=task_id,
                status=TaskStatus.IN_PROGRESS,
                attempt=attempt,
                worker=worker_name,
                status_reason=reason,
            )
            if not retried or not retried.exists():
                return None
        QueueEntry.objects.filter(task_id=task_id).delete()
        task = Task.objects.select_related("project", "queue", "created_by").get(pk=task_id)
        Worker.objects.filter(name=worker_name).update(current_task=task, last_seen=now)
        _, secret = create_api_key(
            task.created_by or system_user(), kind=ApiKeyKind.TASK, task=task, name="step run"
        )
    if claimed:
        _after_status_change(task)
    return task, secret


def heartbeat(task: Task, attempt: int, worker_name: str = "") -> bool:
    """Extend the lease of a running attempt. False means the worker must kill the step."""
    now = timezone.now()
    updated = Task.objects.filter(
        pk=task.pk, status=TaskStatus.IN_PROGRESS, attempt=attempt
    ).update(last_heartbeat=now)
    if worker_name:
        Worker.objects.filter(name=worker_name).update(last_seen=now)
    return bool(updated)


def finish_task(task: Task, attempt: int, status: str, reason: str = "", message: str = "") -> Task:
    """A worker reports the end of its attempt: completed, failed or stopped."""
    if status not in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.STOPPED):
        raise InvalidInput("status must be completed, failed or stopped")
    with transaction.atomic():
        try:
            task = transition(
                task,
                status,
                reason=reason,
                message=message,
                expected=(TaskStatus.IN_PROGRESS,),
                attempt=attempt,
            )
        except Conflict:
            # The same report again (its answer was lost): it already happened, say so.
            current = Task.objects.filter(pk=task.pk, status=status, attempt=attempt).first()
            if current is None or current.status_reason != reason[:255]:
                raise
            return current
        revoke_task_keys(task)
        Worker.objects.filter(current_task=task).update(current_task=None)
    return task


def reap_expired_leases(now=None) -> list[str]:
    """Fail (or re-queue, while attempts remain) running tasks whose worker went silent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TASK_LEASE_SECONDS)
    reaped = []
    stale = Task.objects.filter(status=TaskStatus.IN_PROGRESS, last_heartbeat__lt=cutoff)
    for task in stale.select_related("queue"):
        lost = f"worker {task.worker or '?'} stopped heartbeating (attempt {task.attempt})"
        try:
            with transaction.atomic():
                if task.attempt < task.max_attempts and task.queue is not None:
                    task = transition(
                        task,
                        TaskStatus.QUEUED,
                        reason=f"re-queued: {lost}",
                        expected=(TaskStatus.IN_PROGRESS,),
                        attempt=task.attempt,
                        extra={"attempt": F("attempt") + 1, "worker": ""},
                    )
                    QueueEntry.objects.update_or_create(
                        task=task,
                        defaults={
                            "queue": task.queue,
                            "position": 0.0,
                            "last_published": timezone.now(),
                        },
                    )
                    _publish_on_commit(task)
                else:
                    task = transition(
                        task,
                        TaskStatus.FAILED,
                        reason=lost,
                        expected=(TaskStatus.IN_PROGRESS,),
                        attempt=task.attempt,
                    )
                revoke_task_keys(task)
                Worker.objects.filter(current_task=task).update(current_task=None)
                append_system_log(task, f"[pipelines] {lost}")
        except Conflict:
            continue  # the worker reported in the meantime
        reaped.append(task.id)
    return reaped


def republish_queued(older_than_seconds: float | None = None) -> list[str]:
    """Publish again the queued tasks no worker has claimed, in case the broker lost them.

    Safe because a claim is per attempt: an extra message for a claimed attempt is dropped.
    """
    if older_than_seconds is None:
        older_than_seconds = getattr(settings, "QUEUED_REPUBLISH_SECONDS", 10.0)
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    entries = QueueEntry.objects.filter(
        Q(last_published__isnull=True) | Q(last_published__lt=cutoff),
        task__status=TaskStatus.QUEUED,
    ).select_related("task", "queue")
    published = []
    for entry in entries:
        if broker.publish_run(entry.task_id, entry.task.attempt, entry.queue.name):
            QueueEntry.objects.filter(pk=entry.pk).update(last_published=timezone.now())
            published.append(entry.task_id)
    return published


def worker_heartbeat(name: str, queues: list[str], hostname: str = "", pid=None) -> Worker:
    now = timezone.now()
    worker, _ = Worker.objects.update_or_create(
        name=name,
        defaults={"queues": list(queues), "hostname": hostname, "pid": pid, "last_seen": now},
    )
    return worker


def unregister_worker(name: str) -> None:
    Worker.objects.filter(name=name).delete()


# ---------------------------------------------------------------- console


def append_log(task: Task, lines: list[dict], batch_id: str = "") -> int:
    """Append console lines in order; over CONSOLE_MAX_LINES the middle is dropped.

    A batch sent again under the same `batch_id` (its answer was lost) is stored once.
    """
    if not lines:
        return 0
    with transaction.atomic():
        Task.objects.select_for_update().filter(pk=task.pk).first()
        if batch_id:
            # The task row lock above serialises two copies of one batch.
            if ReceivedBatch.objects.filter(task=task, batch_id=batch_id).exists():
                return 0
            ReceivedBatch.objects.create(task=task, batch_id=batch_id)
        last = LogLine.objects.filter(task=task).aggregate(m=Max("seq"))["m"]
        seq = -1 if last is None else last
        now = timezone.now()
        rows = []
        # Redacted before storing: a credential a step prints is never kept.
        known = secrets.secret_values(task)
        for line in lines:
            seq += 1
            rows.append(
                LogLine(
                    task=task,
                    seq=seq,
                    stream=line.get("stream") or "stdout",
                    text=secrets.mask_text(str(line.get("text", ""))[:10_000], known),
                    timestamp=now,
                )
            )
        LogLine.objects.bulk_create(rows, batch_size=1000)
        _trim_console(task, seq)
    return len(rows)


def _trim_console(task: Task, last_seq: int) -> None:
    limit = settings.CONSOLE_MAX_LINES
    if last_seq < limit:
        return
    head = limit // 2
    tail_start = last_seq - (limit - head) + 1
    LogLine.objects.filter(task=task, seq__gte=head, seq__lt=tail_start).delete()


def append_system_log(task: Task, text: str) -> None:
    append_log(task, [{"stream": "system", "text": text}])


def can_transition_to(task: Task, target: str) -> bool:
    return can_transition(task.status, target)


def archive_task(task: Task) -> Task:
    Task.objects.filter(pk=task.pk).update(archived=True, last_update=timezone.now())
    task.refresh_from_db()
    return task


# ---------------------------------------------------------------- dashboard verbs
# Added for the browser dashboard: deleting and restoring tasks, reordering a queue.


def restore_task(task: Task) -> Task:
    """Undo archive_task."""
    Task.objects.filter(pk=task.pk).update(archived=False, last_update=timezone.now())
    task.refresh_from_db()
    return task


def delete_task(task: Task) -> None:
    """Delete a task that is not queued or running, with its outputs and their bytes.

    Children and pipeline nodes keep existing (their link to it is set to NULL).
    """
    from .storage import delete_task_outputs

    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)
        if task.status in (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS):
            raise Conflict(
                f"task {task.id} is {task.status}: abort or dequeue it before deleting",
                status=task.status,
            )
        delete_task_outputs(task)
        task.delete()


def move_queue_entry(task: Task, direction: str) -> QueueEntry:
    """Swap a queued task with its neighbour ("up" = earlier, "down" = later) in its queue.

    The queue is renumbered 1..n in its current order first, so entries that share a
    position (the reaper puts re-queued tasks at 0) still move one step. Only the recorded
    order changes; a message already on the broker is not recalled.
    """
    if direction not in ("up", "down"):
        raise InvalidInput("direction must be 'up' or 'down'")
    with transaction.atomic():
        entry = QueueEntry.objects.select_for_update().filter(task=task).first()
        if entry is None:
            raise Conflict(f"task {task.id} is not waiting in a queue", status=task.status)
        entries = list(
            QueueEntry.objects.select_for_update()
            .filter(queue_id=entry.queue_id)
            .order_by("position", "added", "pk")
        )
        index = next(i for i, e in enumerate(entries) if e.pk == entry.pk)
        target = index - 1 if direction == "up" else index + 1
        if 0 <= target < len(entries):
            entries[index], entries[target] = entries[target], entries[index]
        for position, item in enumerate(entries, start=1):
            if item.position != position:
                QueueEntry.objects.filter(pk=item.pk).update(position=float(position))
                item.position = float(position)
    return entry


# ---------------------------------------------------------------- ClearML compatibility verbs
# Added for webapp/compat (the ClearML wire protocol). ClearML's `force` flag bypasses the
# transition table and the draft-only edit rule, and its agents poll a queue instead of
# receiving broker messages; these verbs do that on the same rows, with the same
# conditional updates and engine hooks as the verbs above.

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
        fields["status_message"] = message
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
        _after_status_change(fresh)
    return fresh


def edit_task_forced(task: Task, changes: dict) -> Task:
    """`edit_task` without its status rule (ClearML's `force`), plus system tags."""
    unknown = set(changes) - FORCE_EDITABLE
    if unknown:
        raise InvalidInput(f"cannot edit field(s): {', '.join(sorted(unknown))}")
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)
        for field, value in changes.items():
            if field == "hyperparameters":
                value = normalize_hyperparameters(value)
            elif field == "configuration":
                value = normalize_configuration(value)
            elif field in ("tags", "system_tags"):
                if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                    raise InvalidInput(f"{field} must be a list of strings")
            elif field in ("script", "runtime") and not isinstance(value, dict):
                raise InvalidInput(f"{field} must be an object")
            elif field == "type" and value not in TaskType.values:
                raise InvalidInput(f"unknown task type {value!r}")
            elif field == "name" and not str(value or "").strip():
                raise InvalidInput("task name must not be empty")
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
        _after_status_change(task)
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
