"""tasks.delete: a task, with its draft output models, by clearml-server's rules.

Only a draft (or an archived task) is deleted without `force`; a published child or a
published output model also needs it. The published models stay, unlinked; the children
stay, without a parent (task_models.py says what else goes and what is answered).
"""

from django.db import transaction

from webapp.core import access, services
from webapp.core.choices import TaskStatus
from webapp.core.models import Task

from ..documents import get_task, visible_tasks
from ..envelope import ApiError
from ..registry import endpoint
from ..task_models import check_removable, clean_up

RUNNING = (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS)


@endpoint("tasks.delete", verb="task.delete")
def delete(call):
    task = get_task(call, call.require("task"))
    force = call.flag("force")
    if not force and task.status != TaskStatus.CREATED and not task.archived:
        raise ApiError(
            400, f"task cannot be deleted: it is {task.status}, use force=True: {task.id}", 123
        )
    check_removable(task, force)
    steps = list(pipeline_steps(call, task)) if call.flag("include_pipeline_steps") else []
    delete_models = call.flag("delete_output_models", True)
    with transaction.atomic():
        for step in steps:
            if step.status in RUNNING:
                step = services.abort_task(step, "pipeline deleted")
            clean_up(step, force=True, delete_output_models=delete_models, deleting=True)
            services.delete_task(step)
        if task.status in RUNNING:
            task = services.abort_task(task, "deleted")
        cleanup = clean_up(task, force=True, delete_output_models=delete_models, deleting=True)
        services.delete_task(task)
    return {"deleted": True, "events": {}, **cleanup.answer(call.flag("return_file_urls"))}


def pipeline_steps(call, controller: Task):
    """The controller's children that this caller sees and may act on as this endpoint."""
    for child in visible_tasks(call).filter(parent=controller):
        if access.permits(call.rule, call.user, call.key, child):
            yield child
