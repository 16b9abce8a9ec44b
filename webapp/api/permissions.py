from rest_framework import permissions

from webapp.core.access import is_worker_key, may_write_task


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
