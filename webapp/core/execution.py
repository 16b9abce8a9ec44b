"""Verbs for tasks on workers: claiming an attempt, heartbeats, finishing, the lease reaper,
the reconciler that republishes lost messages, and the console.

Like every verb in services.py, status changes are conditional UPDATEs, so a worker's
second delivery, the reaper and a late heartbeat cannot both win.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import broker, limits, secrets, sql, status
from .choices import (
    ENDED_STATES,
    ApiKeyKind,
    LogStream,
    PipelineDefinition,
    PipelineDriver,
    TaskStatus,
)
from .errors import Conflict, InvalidInput, NotFound
from .keys import create_api_key, revoke_task_keys, system_user
from .models import LogLine, Queue, QueueEntry, Task, Worker
from .services import get_or_create_queue, publish_on_commit

logger = logging.getLogger(__name__)


def claim_task(
    task_id: str, attempt: int, worker_name: str, claim_id: str = ""
) -> tuple[Task, str] | None:
    """queued -> in_progress for exactly this attempt of this task; None if it is not.

    Returns the task and a fresh key scoped to it, which the step subprocess uses.
    `claim_id` (one per message the worker handles) makes a retried claim whose answer was
    lost get the same answer, where a second delivery, with its own id, gets nothing.
    """
    reason = _claim_reason("claimed", worker_name, claim_id)
    already = _claimed_before(worker_name, reason) if claim_id else None
    return _claim_first(worker_name, reason, already, [(task_id, attempt)])


def claim_turn(
    task_id: str, attempt: int, worker_name: str, claim_id: str = ""
) -> tuple[Task, str] | None:
    """What a worker's broker message claims: the first task waiting in the queue of the
    message's task (the message's own task when it has no queue); None if none waits.

    A message is a turn in its queue rather than a ticket for one task, so moving a task up
    in the dashboard makes it run next. Every queued task keeps a message of its own (and the
    reconciler republishes any that waits too long), so a message spent on another task
    leaves nothing behind, and each claim is conditional on the task's current attempt, so
    no attempt runs twice.
    """
    reason = _claim_reason("claimed", worker_name, claim_id)
    already, candidates = _turn(task_id, attempt, worker_name, reason if claim_id else None)
    return _claim_first(worker_name, reason, already, candidates)


def claim_from_queue(queue: Queue, worker_name: str) -> Task | None:
    """The first task waiting in `queue`, claimed for a worker that polls (ClearML's
    `queues.get_next_task`) rather than receiving broker messages; None if none waits.

    The same conditional claim as a broker message's, so a poller and a broker-fed worker
    never both get one attempt. No lease is started and no key made: such workers do not
    heartbeat through our API (the reaper leaves their tasks alone, last_heartbeat stays
    empty) and speak for their tasks with their own key.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql.QUEUE_WAITING.text, {"queue": queue.pk, "queued": TaskStatus.QUEUED, "limit": 50}
        )
        candidates = cursor.fetchall()
    reason = _claim_reason("pulled", worker_name, "")
    claimed = _claim_first(worker_name, reason, None, candidates, lease=False)
    return claimed[0] if claimed else None


def _claim_reason(verb: str, worker_name: str, claim_id: str) -> str:
    return (f"{verb} by {worker_name}" + (f" #{claim_id}" if claim_id else ""))[:255]


def _claimed_before(worker_name: str, reason: str) -> str | None:
    """The task this very claim (its answer lost, now retried) already took, if any."""
    return (
        Task.objects.filter(status=TaskStatus.IN_PROGRESS, worker=worker_name)
        .filter(status_reason=reason)
        .values_list("pk", flat=True)
        .first()
    )


_CLAIMED_ROWS = Task.objects.select_related("project", "queue", "created_by")


def _claim_first(
    worker_name: str, reason: str, already: str | None, candidates, lease: bool = True
) -> tuple[Task, str | None] | None:
    """Claim the first of `candidates` (task id, attempt) that is still queued at that
    attempt: the one claim every way of taking a task goes through."""
    if already:
        return _claimed(_CLAIMED_ROWS.get(pk=already), worker_name, lease)
    low, high = connection.ops.integer_field_range(_ATTEMPT_TYPE)
    for candidate, current_attempt in candidates:
        if not low <= current_attempt <= high:
            continue  # no row holds such an attempt; the database would refuse the number
        now = timezone.now()
        try:
            with transaction.atomic():
                task = status.change(
                    candidate,
                    TaskStatus.IN_PROGRESS,
                    reason=reason,
                    expected=(TaskStatus.QUEUED,),
                    attempt=current_attempt,
                    extra={
                        "worker": worker_name[:255],
                        "started": now,
                        "last_heartbeat": now if lease else None,
                    },
                    rows=_CLAIMED_ROWS,
                )
                return _claimed(task, worker_name, lease)
        except (Conflict, NotFound):
            continue  # another worker took it first, or it went away
    return None


_ATTEMPT_TYPE = Task._meta.get_field("attempt").get_internal_type()


def _turn(
    task_id: str, attempt: int, worker_name: str, reason: str | None, limit: int = 20
) -> tuple[str | None, list[tuple[str, int]]]:
    """(the task this claim already took, if `reason` is given and it did; the first tasks
    waiting in the queue of `task_id`, in order, or `task_id` itself when it has no queue).

    While tasks wait, one statement written out: the ORM took about 1 ms to build the three
    reads it replaces, which run in a few tens of microseconds.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql.QUEUE_TURN.text,
            {
                "task": task_id,
                "queued": TaskStatus.QUEUED,
                "running": TaskStatus.IN_PROGRESS,
                "worker": worker_name,
                "reason": reason,
                "limit": limit,
            },
        )
        rows = cursor.fetchall()
    if rows:
        return rows[0][2], [(waiting, its_attempt) for waiting, its_attempt, _ in rows]
    # Nothing waits in its queue, or it has none: then the message claims its own task.
    already = _claimed_before(worker_name, reason) if reason else None
    queue_id = Task.objects.filter(pk=task_id).values_list("queue_id", flat=True).first()
    return already, [(task_id, attempt)] if queue_id is None else []


def _claimed(task: Task, worker_name: str, lease: bool) -> tuple[Task, str | None]:
    Worker.objects.filter(name=worker_name).update(current_task=task, last_seen=timezone.now())
    if not lease:
        return task, None
    _, secret = create_api_key(
        task.created_by or system_user(), kind=ApiKeyKind.TASK, task=task, name="step run"
    )
    return task, secret


def heartbeat(task: Task, attempt: int, worker_name: str = "") -> bool:
    """Extend the lease of a running attempt. False means the worker must kill the step."""
    extended = extend_lease(task.pk, attempt, worker_name)
    return bool(extended and extended[0])


def extend_lease(task_id: str, attempt: int, worker_name: str = "") -> tuple[bool, str, int] | None:
    """A worker's heartbeat: (the attempt is still its to run, the task's status and current
    attempt), None when there is no such task.

    Every running step sends one every lease/6 seconds, so it is one UPDATE while the
    attempt runs, with no read; the task's row is read only to say why it is not. An
    accepted beat of a named worker is its presence too (a second UPDATE, of its row):
    a busy worker sends no presence beats of its own, one request fewer per interval.
    """
    now = timezone.now()
    running = {"pk": task_id, "status": TaskStatus.IN_PROGRESS, "attempt": attempt}
    if worker_name:
        running["worker"] = worker_name  # a named worker extends only its own run
    text, values = sql.update(Task, {"last_heartbeat": now}, running)
    with connection.cursor() as cursor:
        cursor.execute(text, values)
        if cursor.rowcount:
            if worker_name:
                text, values = sql.update(Worker, {"last_seen": now}, {"name": worker_name})
                cursor.execute(text, values)
            return True, TaskStatus.IN_PROGRESS, attempt
    current = Task.objects.filter(pk=task_id).values_list("status", "attempt").first()
    return None if current is None else (False, *current)


def ping_local_run(task: Task) -> bool:
    """A process running its own task (Task.init outside a worker, a pipeline driven by
    start_locally) says it is alive. False once the task is no longer its to run."""
    return bool(
        Task.objects.filter(pk=task.pk, status=TaskStatus.IN_PROGRESS, worker="").update(
            last_heartbeat=timezone.now()
        )
    )


def finish_task(
    task: Task,
    attempt: int,
    outcome: str,
    reason: str = "",
    message: str = "",
    resources: dict | None = None,
) -> Task:
    """A worker reports the end of its attempt: completed, failed or stopped, with what the
    step used (limits.step_resources); the fields of a measure not reported become None,
    so an earlier attempt's numbers never pass for this one's."""
    if outcome not in ENDED_STATES:
        raise InvalidInput("status must be completed, failed or stopped")
    used = limits.step_resources(resources)
    with transaction.atomic():
        try:
            task = status.change(
                task,
                outcome,
                reason=reason,
                message=message,
                expected=(TaskStatus.IN_PROGRESS,),
                attempt=attempt,
                extra=used,
            )
        except Conflict:
            # The same report again (its answer was lost): it already happened, say so.
            current = Task.objects.filter(pk=task.pk, status=outcome, attempt=attempt).first()
            if current is None or current.status_reason != reason[:255]:
                raise
            return current
        revoke_task_keys(task)
        Worker.objects.filter(current_task=task).update(current_task=None)
    return task


def release_task(task: Task, attempt: int, worker_name: str, reason: str = "") -> Task:
    """A worker that is shutting down hands back an attempt it could not finish: in_progress
    -> queued for that same attempt, first in its queue, published again after commit.

    The attempt number stays, so the run is not counted against `max_attempts`: the worker
    stopped it, the step did not fail. Only the worker holding the attempt may hand it back,
    and the same hand-back again (its answer was lost) is answered with the queued task.
    """
    handed_back = f"handed back by {worker_name}"[:255]
    with transaction.atomic():
        # Locked (PostgreSQL; SQLite's IMMEDIATE transactions take the write lock at BEGIN),
        # so no claim by another worker can slip between this check and the transition.
        held = (
            Task.objects.select_for_update(of=("self",))
            .select_related("queue")
            .filter(pk=task.pk, status=TaskStatus.IN_PROGRESS, attempt=attempt)
            .filter(worker=worker_name)
            .first()
        )
        if held is None:
            current = Task.objects.filter(pk=task.pk).first()
            if (
                current is not None
                and current.status == TaskStatus.QUEUED
                and current.attempt == attempt
                and current.status_reason.startswith(handed_back)
            ):
                return current
            raise Conflict(
                f"task {task.pk} attempt {attempt} is not running on {worker_name}",
                status=current.status if current is not None else "missing",
            )
        if held.queue is None:
            raise Conflict(f"task {task.pk} has no queue to go back to", status=held.status)
        why = f"{handed_back}: {reason}" if reason else handed_back
        task = status.change(
            held,
            TaskStatus.QUEUED,
            reason=why,
            expected=(TaskStatus.IN_PROGRESS,),
            attempt=attempt,
            extra={"worker": ""},
        )
        task.queue = held.queue
        QueueEntry.objects.update_or_create(
            task=task,
            defaults={"queue": held.queue, "position": 0.0, "last_published": timezone.now()},
        )
        publish_on_commit(task)
        revoke_task_keys(task)
        Worker.objects.filter(current_task=task).update(current_task=None)
        append_system_log(
            task, f"[pipelines] attempt {attempt} {why}; queued again, not counted as an attempt"
        )
    return task


def reap_expired_leases(now=None) -> list[str]:
    """Fail (or re-queue, while attempts remain) running tasks whose worker went silent."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TASK_LEASE_SECONDS)
    # A process on someone's laptop may pause (sleep, a debugger) far longer than a worker.
    local_cutoff = now - timedelta(seconds=settings.LOCAL_RUN_LEASE_SECONDS)
    reaped = []
    # A server-driven run's controller needs no process once started, pings or not; unless
    # its script is still adding the run's steps (an open definition).
    local = Q(worker="", last_heartbeat__lt=local_cutoff) & ~Q(
        pipeline_run__driver=PipelineDriver.SERVER,
        pipeline_run__definition=PipelineDefinition.FIXED,
    )
    on_worker = ~Q(worker="") & Q(last_heartbeat__lt=cutoff)
    stale = Task.objects.filter(local | on_worker, status=TaskStatus.IN_PROGRESS)
    for task in stale.select_related("queue"):
        if task.worker:
            lost = f"worker {task.worker} stopped heartbeating (attempt {task.attempt})"
        else:
            lost = (
                "the process running it stopped pinging for "
                f"{settings.LOCAL_RUN_LEASE_SECONDS:g} s (killed, or its machine went away)"
            )
        try:
            with transaction.atomic():
                if task.attempt < task.max_attempts and task.queue is not None:
                    task = status.change(
                        task,
                        TaskStatus.QUEUED,
                        reason=f"re-queued: {lost}",
                        expected=(TaskStatus.IN_PROGRESS,),
                        attempt=task.attempt,
                        extra={"worker": ""},
                        next_attempt=True,
                    )
                    QueueEntry.objects.update_or_create(
                        task=task,
                        defaults={
                            "queue": task.queue,
                            "position": 0.0,
                            "last_published": timezone.now(),
                        },
                    )
                    publish_on_commit(task)
                else:
                    task = status.change(
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


_UNCHANGED = object()


def worker_heartbeat(
    name: str,
    queues: list[str],
    hostname: str = "",
    pid=None,
    current_task_id=_UNCHANGED,
    ensure_queues: bool = False,
) -> Worker:
    """A worker says it is alive (and, when given, which task it runs now, for workers that
    report it themselves, as ClearML's agents do). With `ensure_queues`, the queues it
    consumes are made when it registers or changes them."""
    limits.text("name", name, limits.NAME_MAX, allow_empty=False)
    limits.text("hostname", hostname, limits.NAME_MAX)
    if pid is not None:
        limits.integer("pid", pid, 0, limits.INT32_MAX)
    if not isinstance(queues, list) or len(queues) > limits.TAGS_MAX:
        raise InvalidInput(f"queues must be a list of at most {limits.TAGS_MAX}", field="queues")
    for queue in queues:
        limits.text("queues", queue, limits.QUEUE_NAME_MAX)
    now = timezone.now()
    fields = {"queues": list(queues), "hostname": hostname, "pid": pid, "last_seen": now}
    if current_task_id is not _UNCHANGED:
        # Only a task that exists: the id is the caller's text (a foreign key on PostgreSQL).
        existing = Task.objects.filter(pk=str(current_task_id or "")).values_list("pk", flat=True)
        fields["current_task_id"] = existing.first()
    # Every worker says this every lease/3 seconds, nearly always with the queues it said
    # last time: then one read and one UPDATE, no transaction, no queue lookups.
    known = Worker.objects.filter(name=name)[:1]
    known = known[0] if known else None
    if known is not None and known.queues == fields["queues"]:
        changes = {field: value for field, value in fields.items() if field != "queues"}
        text, values = sql.update(Worker, changes, {"pk": known.pk})
        with connection.cursor() as cursor:
            cursor.execute(text, values)
            if cursor.rowcount:
                for field, value in changes.items():
                    setattr(known, field, value)
                return known
    if ensure_queues:
        for queue in queues:
            get_or_create_queue(queue)
    worker, _ = Worker.objects.update_or_create(name=name, defaults=fields)
    return worker


def unregister_worker(name: str) -> None:
    Worker.objects.filter(name=name).delete()


def forget_silent_workers(now=None) -> list[str]:
    """Remove the workers that have not reported for WORKER_FORGET_SECONDS: a worker killed
    before it could unregister would otherwise be listed, as gone, for ever."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.WORKER_FORGET_SECONDS)
    silent = Worker.objects.filter(last_seen__lt=cutoff)
    names = list(silent.values_list("name", flat=True))
    if names:
        silent.delete()  # the same condition again: one that reported meanwhile stays
    return names


# ---------------------------------------------------------------- console


def append_log(task: Task, lines: list[dict], batch_id: str = "") -> int:
    """Append console lines in order; over CONSOLE_MAX_LINES the middle is dropped.

    A batch sent again under the same `batch_id` (its answer was lost) is stored once.
    """
    if not lines:
        return 0
    with transaction.atomic():
        sql.lock_task(task.pk)
        # The task row lock above serialises two copies of one batch.
        if batch_id and not sql.record_batch(task.pk, batch_id, timezone.now()):
            return 0
        last = sql.highest_seq(LogLine, task.pk)
        seq = -1 if last is None else last
        now = timezone.now()
        rows = []
        # Redacted before storing: a credential a step prints is never kept.
        known = secrets.secret_values(task)
        for line in lines:
            seq += 1
            stream = line.get("stream") or LogStream.STDOUT
            if stream not in LogStream.values:
                raise InvalidInput(f"unknown console stream {stream!r}", field="stream")
            # A ClearML client's lines carry when and at which iteration and metric they
            # were logged (the ClearML door passes them as a datetime and integers).
            stamp = line.get("timestamp")
            iteration = line.get("iteration")
            if type(iteration) is not int or not limits.INT64_MIN <= iteration <= limits.INT64_MAX:
                iteration = None
            rows.append(
                LogLine(
                    task=task,
                    seq=seq,
                    stream=stream,
                    text=secrets.mask_text(
                        str(line.get("text", ""))[:10_000].replace("\x00", "\ufffd"), known
                    ),
                    timestamp=stamp if isinstance(stamp, datetime) else now,
                    iteration=iteration,
                    metric=str(line.get("metric") or "")[:255].replace("\x00", ""),
                )
            )
        LogLine.objects.bulk_create(rows, batch_size=1000)
        _trim_console(task, seq)
    return len(rows)


def clear_console(
    task: Task, *, older_than=None, only_metrics=None, except_metrics=None, published=False
) -> int:
    """Delete a task's console lines (ClearML's clear_task_log): those logged before
    `older_than`, under `only_metrics` or not under `except_metrics`. A published task's
    console is kept unless `published` says the caller means it."""
    if task.status == TaskStatus.PUBLISHED and not published:
        raise Conflict("a published task's console is kept", status=task.status)
    lines = LogLine.objects.filter(task=task)
    if older_than is not None:
        lines = lines.filter(timestamp__lt=older_than)
    if only_metrics:
        lines = lines.filter(metric__in=list(only_metrics))
    if except_metrics:
        lines = lines.exclude(metric__in=list(except_metrics))
    deleted, _ = lines.delete()
    return deleted


def _trim_console(task: Task, last_seq: int) -> None:
    limit = settings.CONSOLE_MAX_LINES
    if last_seq < limit:
        return
    head = limit // 2
    tail_start = last_seq - (limit - head) + 1
    LogLine.objects.filter(task=task, seq__gte=head, seq__lt=tail_start).delete()


def append_system_log(task: Task, text: str) -> None:
    append_log(task, [{"stream": "system", "text": text}])
