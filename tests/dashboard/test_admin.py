"""Django admin: a task's state moves only through its verbs."""

from webapp.core import execution, services
from webapp.core.models import Task


def _change_form(admin_client, task) -> dict:
    """The admin's change form for `task`, as the page filled it in."""
    page = admin_client.get(f"/admin/core/task/{task.id}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        data[name] = "" if value is None else value
    return data


def test_the_admin_cannot_set_a_tasks_status_or_attempt(admin_client, task):
    data = _change_form(admin_client, task)
    assert "status" not in data and "attempt" not in data
    data.update(status="completed", attempt=7, comment="edited")
    response = admin_client.post(f"/admin/core/task/{task.id}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    task.refresh_from_db()
    assert (task.status, task.attempt, task.comment) == ("created", 0, "edited")


def test_saving_a_task_in_the_admin_does_not_undo_what_happened_since_the_page_loaded(
    admin_client, task
):
    task = services.enqueue_task(task, "default")
    data = _change_form(admin_client, task)
    # Meanwhile a worker takes it.
    claimed, _key = execution.claim_task(task.id, task.attempt, "w1")
    assert claimed.status == "in_progress"
    data["comment"] = "a note"
    response = admin_client.post(f"/admin/core/task/{task.id}/change/", data)
    assert response.status_code == 302, response.content[:2000]
    row = Task.objects.get(pk=task.id)
    assert (row.status, row.worker, row.comment) == ("in_progress", "w1", "a note")
