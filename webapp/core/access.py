"""Who sees what. One place, so the API, the dashboard and the admin agree.

A user sees the projects they created; staff see everything. Worker keys see every task
(they run them). A task key sees what its task's owner sees and writes only to its task.
"""

from django.db.models import Q, QuerySet

from .choices import ApiKeyKind
from .models import Artifact, Project, Task


def is_worker_key(key) -> bool:
    return getattr(key, "kind", None) == ApiKeyKind.WORKER


def sees_everything(user, key=None) -> bool:
    return bool(user and (user.is_staff or user.is_superuser)) or is_worker_key(key)


def visible_projects(user, key=None) -> QuerySet:
    if sees_everything(user, key):
        return Project.objects.all()
    return Project.objects.filter(Q(created_by=user))


def visible_tasks(user, key=None) -> QuerySet:
    if sees_everything(user, key):
        return Task.objects.all()
    return Task.objects.filter(project__created_by=user)


def visible_artifacts(user, key=None) -> QuerySet:
    if sees_everything(user, key):
        return Artifact.objects.all()
    return Artifact.objects.filter(task__project__created_by=user)


def may_write_task(task: Task, key=None) -> bool:
    """A task-scoped key writes only to its own task (and the tasks it created)."""
    if getattr(key, "kind", None) != ApiKeyKind.TASK:
        return True
    return task.pk == key.task_id or task.parent_id == key.task_id
