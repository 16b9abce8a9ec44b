"""The one writer of `Task.status`.

Every status change in the system (a user's enqueue or abort, a worker's claim and report,
the reaper, the ClearML protocol's forced changes) is a call of `change()`: one conditional
UPDATE against the row, so two callers racing (a second delivery, the reaper and a late
heartbeat) cannot both win. A task that leaves `queued` leaves its queue in the same
transaction, and what follows a change (the pipeline engine, the ClearML mirror, triggers)
is told through hooks.STATUS_CHANGED, whose listeners their apps' `ready()` registers, so
this module imports none of them.

The UPDATE is written out (sql.py): every claim, report and enqueue runs one, and the ORM
spent several times longer building it than the database running it.
"""

import logging

from django.db import connection, transaction
from django.utils import timezone

from . import hooks, limits, sql
from .choices import ENDED_STATES, TASK_TRANSITIONS, TaskStatus
from .errors import Conflict, InvalidInput, NotFound
from .models import Task

logger = logging.getLogger(__name__)


def change(
    task,
    target: str,
    *,
    reason: str = "",
    message: str = "",
    expected: tuple[str, ...] | None = None,
    attempt: int | None = None,
    extra: dict | None = None,
    next_attempt: bool = False,
    force: bool = False,
    as_read: bool = False,
    rows=None,
):
    """Move `task` (a Task, or its id) to `target`; returns the changed row.

    - The table in choices.py decides which statuses it may come from, narrowed to
      `expected`; `force` (the ClearML protocol's flag) allows any, but still only from the
      status `task` was read with, and a change to the same status then only refreshes the
      reason and message.
    - `attempt` makes it conditional on that attempt too; `next_attempt` counts one more.
    - `extra` sets other fields (plain values) in the same statement.
    - `as_read`: `task` is a row this request has just read; the change is conditional on
      its attempt and `last_update` as read too (every change of a task moves
      `last_update`, except a running task's lease), so when it matches, `task` updated in
      memory is the row and nothing is read back. Returns None when it does not match.
    - Otherwise the row is read back (with `rows`, a Task queryset, when given), and a
      change that did not apply raises Conflict (or NotFound), saying why.
    """
    if target not in TaskStatus.values:
        raise InvalidInput(f"unknown status {target!r}")
    task_id = task if isinstance(task, str) else task.pk
    if force or as_read:
        sources = [task.status]
        if not force and task.status not in _sources(target, expected):
            return None
    else:
        sources = _sources(target, expected)
    same = force and task.status == target
    fields = _fields(target, reason, message, extra, stamp_end=not same)
    where = {"id": task_id}
    if as_read:
        where.update(attempt=task.attempt, last_update=task.last_update)
    elif attempt is not None:
        where["attempt"] = attempt
    # The change and what its listeners record commit together: a listener that notes an
    # event (automation's trigger firings) never misses one the change committed.
    with transaction.atomic(savepoint=False):
        if target != TaskStatus.QUEUED and TaskStatus.QUEUED in sources:
            # Both or neither (the enclosing block).
            changed = _update(fields, where, sources, next_attempt)
            if changed:
                with connection.cursor() as cursor:
                    cursor.execute(sql.LEAVE_QUEUE.text, {"task": task_id})
        else:
            changed = _update(fields, where, sources, next_attempt)
        if as_read:
            if not changed:
                return None
            for name, value in fields.items():
                setattr(task, name, value)
            if next_attempt:
                task.attempt += 1
            current = task
            if not same:
                notify(current)
        else:
            current = next(iter((rows or Task.objects).filter(pk=task_id).order_by()[:1]), None)
            if current is None or not changed:
                # Raised outside the block: a caller's transaction that catches it goes on.
                refused = current
            elif not same:
                notify(current)
    if not as_read and (current is None or not changed):
        if refused is None:
            raise NotFound(f"task {task_id} does not exist")
        raise _conflict(refused, target, attempt, force)
    return current


def notify(task: Task) -> None:
    """Tell the status listeners (hooks.STATUS_CHANGED) that `task` changed status."""
    hooks.notify(hooks.STATUS_CHANGED, task)


def _sources(target: str, expected: tuple[str, ...] | None) -> list[str]:
    sources = [s for s, targets in TASK_TRANSITIONS.items() if target in targets]
    return sources if expected is None else [s for s in sources if s in expected]


def _fields(target: str, reason: str, message: str, extra: dict | None, stamp_end: bool) -> dict:
    now = timezone.now()
    fields = {"status": target, "status_reason": reason[:255], "last_update": now}
    if message:
        fields["status_message"] = limits.text("message", message, limits.STATUS_MESSAGE_MAX)
    if stamp_end and target in ENDED_STATES:
        fields["completed"] = now
    return {**fields, **(extra or {})}


def _update(fields: dict, where: dict, sources: list[str], next_attempt: bool) -> bool:
    if not sources:
        return False
    statement, values = sql.update(
        Task, fields, where, among=("status", sources), increment=("attempt",) * next_attempt
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        return cursor.rowcount > 0


def _conflict(current: Task, target: str, attempt: int | None, force: bool) -> Conflict:
    if attempt is not None and current.attempt != attempt:
        return Conflict(
            f"task {current.pk} attempt {attempt} is no longer current "
            f"(current attempt {current.attempt}, status {current.status})",
            status=current.status,
        )
    if force:
        return Conflict(
            f"task {current.pk} changed to {current.status} meanwhile", status=current.status
        )
    return Conflict(
        f"task {current.pk} is {current.status}; cannot move it to {target}",
        status=current.status,
    )
