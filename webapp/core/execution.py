"""Verbs for tasks on workers: claiming an attempt, heartbeats, finishing, the lease reaper,
the reconciler that republishes lost messages, and the console.

Like every verb in services.py, status changes are conditional UPDATEs, so a worker's
second delivery, the reaper and a late heartbeat cannot both win.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from . import broker, secrets, sql
from .choices import ApiKeyKind, PipelineDriver, TaskStatus
from .errors import Conflict, InvalidInput
from .keys import create_api_key, revoke_task_keys, system_user
from .models import LogLine, QueueEntry, ReceivedBatch, Task, Worker
from .services import after_status_change, publish_on_commit, transition

logger = logging.getLogger(__name__)


def claim_task(
    task_id: str, attempt: int, worker_name: str, claim_id: str = ""
) -> tuple[Task, str] | None:
    """queued -> in_progress for exactly this attempt of this task; None if it is not.

    Returns the task and a fresh key scoped to it, which the step subprocess uses.
    `claim_id` (one per message the worker handles) makes a retried claim whose answer was
    lost get the same answer, where a second delivery, with its own id, gets nothing.
    """
    reason = _claim_reason(worker_name, claim_id)
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
    reason = _claim_reason(worker_name, claim_id)
    already, candidates = _turn(task_id, attempt, worker_name, reason if claim_id else None)
    return _claim_first(worker_name, reason, already, candidates)


def _claim_reason(worker_name: str, claim_id: str) -> str:
    return (f"claimed by {worker_name}" + (f" #{claim_id}" if claim_id else ""))[:255]


def _claimed_before(worker_name: str, reason: str) -> str | None:
    """The task this very claim (its answer lost, now retried) already took, if any."""
    return (
        Task.objects.filter(status=TaskStatus.IN_PROGRESS, worker=worker_name)
        .filter(status_reason=reason)
        .values_list("pk", flat=True)
        .first()
    )


def _claim_first(
    worker_name: str, reason: str, already: str | None, candidates
) -> tuple[Task, str] | None:
    if already:
        return _claimed(already, worker_name)
    for candidate, current_attempt in candidates:
        with transaction.atomic():
            if not _take(candidate, current_attempt, worker_name, reason):
                continue  # another worker took it first
            task, secret = _claimed(candidate, worker_name)
        after_status_change(task)
        return task, secret
    return None


def _take(task_id: str, attempt: int, worker_name: str, reason: str) -> bool:
    """queued -> in_progress for exactly this attempt, and out of its queue; False if the
    task is not queued at that attempt (then nothing changed). Written out like _turn: the
    ORM spent far longer building these two statements than the database running them."""
    low, high = connection.ops.integer_field_range(_ATTEMPT_TYPE)
    if not low <= attempt <= high:
        return False  # no row holds such an attempt; the database would refuse the number
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    take, leave_queue = _take_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            take,
            {
                "task": task_id,
                "attempt": attempt,
                "queued": TaskStatus.QUEUED,
                "running": TaskStatus.IN_PROGRESS,
                "reason": reason,
                "worker": worker_name,
                "now": now,
            },
        )
        if cursor.rowcount != 1:
            return False
        cursor.execute(leave_queue, {"task": task_id})
    return True


def _take_sql() -> tuple[str, str]:
    tables = (("task_table", Task), ("entry_table", QueueEntry))
    return (
        sql.statement(_TAKE, tables, _TAKE_COLUMNS),
        sql.statement(_LEAVE_QUEUE, tables, _TAKE_COLUMNS),
    )


_ATTEMPT_TYPE = Task._meta.get_field("attempt").get_internal_type()
_TAKE_COLUMNS = (
    *("id", "attempt", "status", "status_reason", "worker"),
    *("started", "last_heartbeat", "last_update", "task_id"),
)
_TAKE = """
    UPDATE {task_table} SET {status} = %(running)s, {status_reason} = %(reason)s,
        {worker} = %(worker)s, {started} = %(now)s, {last_heartbeat} = %(now)s,
        {last_update} = %(now)s
    WHERE {id} = %(task)s AND {status} = %(queued)s AND {attempt} = %(attempt)s
"""
_LEAVE_QUEUE = "DELETE FROM {entry_table} WHERE {task_id} = %(task)s"


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
            _turn_sql(),
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


def _turn_sql() -> str:
    tables = (("task_table", Task), ("entry_table", QueueEntry))
    return sql.statement(_TURN, tables, _TURN_COLUMNS)


_TURN_COLUMNS = (
    *("id", "attempt", "status", "status_reason", "worker", "queue_id"),
    *("task_id", "position", "added"),
)
_TURN = """
    SELECT entry.{task_id}, waiting.{attempt}, (
        SELECT mine.{id} FROM {task_table} mine
        WHERE mine.{status} = %(running)s AND mine.{worker} = %(worker)s
            AND mine.{status_reason} = %(reason)s
        LIMIT 1
    )
    FROM {entry_table} entry INNER JOIN {task_table} waiting ON entry.{task_id} = waiting.{id}
    WHERE entry.{queue_id} = (
            SELECT message.{queue_id} FROM {task_table} message WHERE message.{id} = %(task)s
        )
        AND waiting.{status} = %(queued)s
    ORDER BY entry.{position}, entry.{added}, entry.{id}
    LIMIT %(limit)s
"""


def _claimed(task_id: str, worker_name: str) -> tuple[Task, str]:
    task = Task.objects.select_related("project", "queue", "created_by").get(pk=task_id)
    Worker.objects.filter(name=worker_name).update(current_task=task, last_seen=timezone.now())
    _, secret = create_api_key(
        task.created_by or system_user(), kind=ApiKeyKind.TASK, task=task, name="step run"
    )
    return task, secret


def heartbeat(task: Task, attempt: int, worker_name: str = "") -> bool:
    """Extend the lease of a running attempt. False means the worker must kill the step.

    A named worker extends only its own run: an attempt handed back (release_task) keeps
    its number when another worker takes it.
    """
    now = timezone.now()
    running = Task.objects.filter(pk=task.pk, status=TaskStatus.IN_PROGRESS, attempt=attempt)
    if worker_name:
        running = running.filter(worker=worker_name)
    updated = running.update(last_heartbeat=now)
    if worker_name:
        Worker.objects.filter(name=worker_name).update(last_seen=now)
    return bool(updated)


def ping_local_run(task: Task) -> bool:
    """A process running its own task (Task.init outside a worker, a pipeline driven by
    start_locally) says it is alive. False once the task is no longer its to run."""
    return bool(
        Task.objects.filter(pk=task.pk, status=TaskStatus.IN_PROGRESS, worker="").update(
            last_heartbeat=timezone.now()
        )
    )


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
            status = current.status if current is not None else "missing"
            raise Conflict(
                f"task {task.pk} attempt {attempt} is not running on {worker_name}",
                status=status,
            )
        if held.queue is None:
            raise Conflict(f"task {task.pk} has no queue to go back to", status=held.status)
        why = f"{handed_back}: {reason}" if reason else handed_back
        task = transition(
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
    # A server-driven run's controller needs no process once started, pings or not.
    local = Q(worker="", last_heartbeat__lt=local_cutoff) & ~Q(
        pipeline_run__driver=PipelineDriver.SERVER
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
                    publish_on_commit(task)
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
