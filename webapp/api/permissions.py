from rest_framework import permissions

from webapp.core.access import is_worker_key, may_write_task
from webapp.core.choices import ApiKeyKind


class TaskKeyWritesOwnTask(permissions.BasePermission):
    """A key issued to one step run may read widely but change only that task."""

    message = "this key is scoped to another task"

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        # An artifact belongs to a task, a pipeline run to its controller task.
        task = getattr(obj, "task", None) or getattr(obj, "controller", None) or obj
        return may_write_task(task, request.auth)


class IsWorker(permissions.BasePermission):
    """Claiming and reporting runs: worker keys, or staff users."""

    message = "only a worker key (or a staff user) may do this"

    def has_permission(self, request, view):
        user = request.user
        return is_worker_key(request.auth) or bool(
            user and user.is_staff and getattr(request.auth, "kind", "user") == "user"
        )


# What a worker key may change: its own run verbs and the console it streams. Everything
# else it may only read, so a leaked worker key cannot edit, enqueue, abort or mint keys.
WORKER_KEY_ACTIONS = frozenset({"claim", "heartbeat", "finish", "release", "console", "unregister"})


class KeyScope(permissions.BasePermission):
    """Applied to every API view (settings): worker keys write only worker verbs."""

    message = "a worker key may only claim, heartbeat, report, hand back and stream consoles"

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS or not is_worker_key(request.auth):
            return True
        return getattr(view, "action", None) in WORKER_KEY_ACTIONS


class UserCredentialsOnly(permissions.BasePermission):
    """A person's own credentials (the session or a user key), not a worker or task key:
    a key scoped to one task or to running steps must not mint or revoke full keys."""

    message = "this needs a user key or a logged-in session"

    def has_permission(self, request, view):
        return getattr(request.auth, "kind", ApiKeyKind.USER) == ApiKeyKind.USER
