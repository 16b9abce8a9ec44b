"""The task page's buttons: each parses a form, calls one verb of core.services, redirects.

Domain errors (an illegal transition, a bad queue name) come back as a message on the
page they were sent from, never as an error page.
"""

import logging
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from webapp.core import access, policy, services
from webapp.core.errors import DomainError

from . import registry
from .forms import TaskDetailsForm, first_error
from .permissions import task_actions
from .views import visible_task

logger = logging.getLogger(__name__)


def _back(request, task=None):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return redirect(target)
    if task is not None:
        return redirect("dashboard:task", task_id=task.id)
    return redirect("dashboard:projects")


# Each button's verb in the policy table (webapp/core/policy.py), as over the API.
VERBS = {
    "clone": "task.create",
    "enqueue": "task.queue",
    "dequeue": "task.queue",
    "abort": "task.abort",
    "reset": "task.reset",
    "archive": "task.edit",
    "restore": "task.edit",
    "delete": "task.delete",
    "edit": "task.edit",
    "publish": "task.publish",
    "annotate": "task.edit",
}


def task_action(allowed_by: str):
    """POST only, logged in, a task the user may see and act on as the button's verb (the
    policy table), allowed in its state (the same rule that enables the button), domain
    errors shown as messages."""
    verb = VERBS[allowed_by]

    def decorate(view):
        @login_required
        @require_POST
        @wraps(view)
        def wrapper(request, task_id: str):
            task = visible_task(request, task_id)
            if not access.permits(policy.rule_for(verb, request.user), request.user, None, task):
                messages.error(request, f"You may not {policy.verb(verb).summary} here.")
                return _back(request, task)
            if not task_actions(task)[allowed_by]:
                messages.error(
                    request,
                    f"“{task.name}” is {task.get_status_display().lower()}: "
                    f"{allowed_by} is not possible now.",
                )
                return _back(request, task)
            try:
                return view(request, task)
            except DomainError as error:
                messages.error(request, error.message)
                return _back(request, task)

        return wrapper

    return decorate


@task_action("clone")
def clone(request, task):
    name = request.POST.get("name", "").strip() or f"Clone of {task.name}"
    project_name = request.POST.get("project", "").strip() or None
    copy = services.clone_task(task, user=request.user, name=name, project_name=project_name)
    messages.success(request, f"Cloned into draft “{copy.name}”.")
    # The clone opens on the tab the user was looking at, when it has that tab.
    tab = request.POST.get("tab", "")
    slugs = [t.slug for t in registry.tabs_for(copy)]
    if tab in slugs[1:]:
        return redirect("dashboard:task_tab", task_id=copy.id, slug=tab)
    return redirect("dashboard:task", task_id=copy.id)


@task_action("enqueue")
def enqueue(request, task):
    queue = request.POST.get("queue", "").strip() or "default"
    services.enqueue_task(task, queue)
    messages.success(request, f"Enqueued on {queue}.")
    return _back(request, task)


@task_action("dequeue")
def dequeue(request, task):
    services.dequeue_task(task)
    messages.success(request, "Removed from its queue; the task is a draft again.")
    return _back(request, task)


@task_action("abort")
def abort(request, task):
    services.abort_task(task, f"aborted by {request.user.get_username()}")
    messages.success(request, "Aborted.")
    return _back(request, task)


@task_action("reset")
def reset(request, task):
    services.reset_task(task)
    messages.success(request, "Reset to draft; its outputs were cleared.")
    return _back(request, task)


@task_action("publish")
def publish(request, task):
    services.publish_task(task)
    messages.success(request, "Published: the task and its outputs are final.")
    return _back(request, task)


@task_action("annotate")
def details(request, task):
    """Tags and description, editable in any state (ClearML's too)."""
    form = TaskDetailsForm(data=request.POST)
    if not form.is_valid():
        messages.error(request, first_error(form))
        return _back(request, task)
    services.edit_task(task, dict(form.validated_data))
    messages.success(request, "Tags and description saved.")
    return _back(request, task)


@task_action("archive")
def archive(request, task):
    services.archive_task(task)
    messages.success(request, "Archived.")
    return _back(request, task)


@task_action("restore")
def restore(request, task):
    services.restore_task(task)
    messages.success(request, "Restored from the archive.")
    return _back(request, task)


@task_action("delete")
def delete(request, task):
    project_id, name = task.project_id, task.name
    services.delete_task(task)
    messages.success(request, f"Deleted “{name}”.")
    return redirect(reverse("dashboard:project", kwargs={"project_id": project_id}))


MAX_PARAMETER_ROWS = 2000


@task_action("edit")
def hyperparameters(request, task):
    """The form posts every row as section-N, name-N, value-N, type-N, description-N (and
    delete-N when ticked), plus one empty row for a new parameter. The rows replace the
    whole set, so renaming and deleting work like editing a value."""
    post = request.POST
    try:
        count = min(int(post.get("rows", "0")), MAX_PARAMETER_ROWS)
    except ValueError:
        count = 0
    values: dict[str, dict] = {}
    for index in range(count + 1):
        name = post.get(f"name-{index}", "").strip()
        if not name or post.get(f"delete-{index}"):
            continue
        section = post.get(f"section-{index}", "").strip() or "General"
        values.setdefault(section, {})[name] = {
            "value": post.get(f"value-{index}", ""),
            "type": post.get(f"type-{index}", "").strip(),
            "description": post.get(f"description-{index}", ""),
        }
    services.set_hyperparameters(task, values, replace=True)
    messages.success(request, "Parameters saved.")
    return _back(request, task)
