"""ClearML's task state machine, applied through our services.

ClearML's table differs from ours (it allows e.g. stopped -> queued and completed ->
in_progress), and its `force` flag bypasses it; a same-state change is allowed. We check
ClearML's rules here, then move the row with our verbs: `abort_task` for stops (it also
drops the queue entry and revokes step keys), `status.change` where our table agrees, and
`status.change` with `force` where only ClearML's does.
"""

from django.utils import timezone

from webapp.core import services, status
from webapp.core.choices import TaskStatus, can_transition
from webapp.core.models import Task

from .envelope import ApiError

S = TaskStatus
# From apiserver/bll/task/utils.py (clearml-server); `closed`/`publishing` have no
# counterpart here and are left out.
CLEARML_TRANSITIONS: dict[str, frozenset] = {
    S.CREATED: frozenset({S.QUEUED, S.IN_PROGRESS}),
    S.QUEUED: frozenset({S.CREATED, S.IN_PROGRESS, S.STOPPED}),
    S.IN_PROGRESS: frozenset({S.STOPPED, S.FAILED, S.CREATED, S.COMPLETED}),
    S.STOPPED: frozenset({S.CREATED, S.FAILED, S.QUEUED, S.IN_PROGRESS, S.PUBLISHED, S.COMPLETED}),
    S.FAILED: frozenset({S.CREATED, S.STOPPED, S.PUBLISHED, S.QUEUED}),
    S.COMPLETED: frozenset({S.PUBLISHED, S.IN_PROGRESS, S.CREATED}),
    S.PUBLISHED: frozenset(),
}


def check_allowed(task: Task, target: str, force: bool) -> None:
    current = task.status
    if current == target:
        return
    if current == S.PUBLISHED or (not force and target not in CLEARML_TRANSITIONS[current]):
        # The real server's 400/110; the agent relies on it to leave a failed task failed
        # when it reports `completed` after the pipeline controller marked itself failed.
        raise ApiError(
            400,
            f"Invalid task status (Invalid status change: current_status={current}, "
            f"new_status={target})",
            110,
        )


def change_status(
    task: Task,
    target: str,
    *,
    force: bool = False,
    reason: str = "",
    message: str = "",
    extra: dict | None = None,
) -> Task:
    check_allowed(task, target, force)
    current = task.status
    extra = dict(extra or {})
    if target == S.IN_PROGRESS and current != S.IN_PROGRESS and not task.started:
        extra.setdefault("started", timezone.now())
    if current == target:
        return status.change(task, target, reason=reason, message=message, force=True)
    if target == S.STOPPED and current in (S.QUEUED, S.IN_PROGRESS, S.CREATED):
        return services.abort_task(task, reason or "stopped")
    if can_transition(current, target) and current != S.QUEUED:
        return status.change(
            task, target, reason=reason, message=message, expected=(current,), extra=extra
        )
    return status.change(task, target, reason=reason, message=message, extra=extra, force=True)
