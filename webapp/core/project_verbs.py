"""Project verbs beyond creating and deleting an empty one: renaming a project with its
subprojects, and moving a task to another project (ClearML's projects.update and
tasks.edit/reports.move call them; services.py has the rest)."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import limits
from .errors import Conflict, InvalidInput
from .models import Project, Task


def rename_project(project: Project, new_name: str) -> int:
    """Rename `project` and every `project/...` under it with it, so the tree stays whole.
    A name any of them would take that is already someone's is refused (Conflict); nothing
    is renamed then. Returns how many projects were renamed."""
    new_name = limits.text("name", new_name, limits.NAME_MAX, allow_empty=False).strip().strip("/")
    if not new_name:
        raise InvalidInput("project name must not be empty", field="name")
    if new_name == project.name:
        return 0
    old_prefix = f"{project.name}/"
    if new_name.startswith(old_prefix):
        raise InvalidInput("a project cannot be moved under itself", field="name")
    with transaction.atomic():
        rows = [project, *Project.objects.select_for_update().filter(name__startswith=old_prefix)]
        renamed = {row.pk: new_name + row.name[len(project.name) :] for row in rows}
        for name in renamed.values():
            if len(name) > limits.NAME_MAX:
                raise InvalidInput(
                    f"project name is longer than {limits.NAME_MAX} characters", field="name"
                )
        taken = Project.objects.filter(name__in=renamed.values()).exclude(pk__in=renamed)
        if taken.exists():
            raise Conflict(f"a project named {taken.first().name!r} exists already")
        try:
            for row in rows:
                Project.objects.filter(pk=row.pk).update(name=renamed[row.pk])
        except IntegrityError as error:
            raise Conflict("a project with that name was created meanwhile") from error
    project.name = new_name
    return len(rows)


def move_task(task: Task, project: Project) -> Task:
    """Put `task` in another project (its team then decides who sees it). The caller has
    checked that it may change both the task and the project it goes to."""
    if task.project_id == project.pk:
        return task
    now = timezone.now()
    Task.objects.filter(pk=task.pk).update(project=project, last_update=now)
    task.project, task.last_update = project, now
    return task
