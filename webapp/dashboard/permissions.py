"""Which buttons a task's state allows, from the one transition table in core.choices."""

from webapp.core.choices import ACTIVE_STATES, TaskStatus, can_transition


def task_actions(task) -> dict[str, bool]:
    status = task.status
    return {
        "clone": True,
        "enqueue": status == TaskStatus.CREATED and can_transition(status, TaskStatus.QUEUED),
        "dequeue": status == TaskStatus.QUEUED and can_transition(status, TaskStatus.CREATED),
        "abort": status in ACTIVE_STATES and can_transition(status, TaskStatus.STOPPED),
        # A draft has nothing to clear, and a running task must be aborted first.
        "reset": status not in (TaskStatus.CREATED, TaskStatus.IN_PROGRESS)
        and can_transition(status, TaskStatus.CREATED),
        "archive": not task.archived and status not in ACTIVE_STATES,
        "restore": task.archived,
        "delete": status not in ACTIVE_STATES,
        "edit": status == TaskStatus.CREATED,
        "publish": status == TaskStatus.COMPLETED and can_transition(status, TaskStatus.PUBLISHED),
        # Tags and the description are notes about a task, not its definition.
        "annotate": True,
    }
