"""The task buttons and queue/key forms: each goes through one service verb."""

import pytest

from webapp.core import keys, services
from webapp.core.choices import ApiKeyKind
from webapp.core.models import ApiKey, QueueEntry, Task


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_actions_refuse_get(admin_client, task):
    for verb in ("clone", "enqueue", "abort", "reset", "archive", "delete", "hyperparameters"):
        assert admin_client.get(f"/tasks/{task.id}/{verb}/").status_code == 405, verb


def test_clone_into_another_project_then_enqueue_and_abort(admin_client, task):
    response = admin_client.post(
        f"/tasks/{task.id}/clone/", {"name": "copy", "project": "elsewhere"}
    )
    copy = Task.objects.get(name="copy")
    assert response["Location"] == f"/tasks/{copy.id}/"
    assert (copy.project.name, copy.parent_id, copy.status) == ("elsewhere", task.id, "created")
    admin_client.post(f"/tasks/{copy.id}/enqueue/", {"queue": "gpu"})
    copy.refresh_from_db()
    assert (copy.status, copy.queue.name) == ("queued", "gpu")
    admin_client.post(f"/tasks/{copy.id}/abort/")
    copy.refresh_from_db()
    assert copy.status == "stopped" and not QueueEntry.objects.filter(task=copy).exists()


def test_an_action_the_state_does_not_allow_becomes_a_message_not_an_error_page(admin_client, task):
    # the buttons are disabled, but a forced POST is refused the same way
    response = admin_client.post(f"/tasks/{task.id}/abort/", follow=True)
    assert response.status_code == 200
    assert any("abort is not possible now" in m for m in _messages(response))
    task.refresh_from_db()
    assert task.status == "created"
    services.enqueue_task(task, "default")
    response = admin_client.post(f"/tasks/{task.id}/delete/", follow=True)
    assert any("is queued: delete is not possible now" in m for m in _messages(response))
    assert Task.objects.filter(pk=task.pk).exists()


def test_a_domain_error_from_the_verb_becomes_a_message(admin_client, task):
    response = admin_client.post(f"/tasks/{task.id}/enqueue/", {"queue": "bad name!"}, follow=True)
    assert any("invalid queue name" in m for m in _messages(response))
    task.refresh_from_db()
    assert task.status == "created"


def test_reset_archive_restore_delete(admin_client, task):
    services.abort_task(task)
    admin_client.post(f"/tasks/{task.id}/reset/")
    task.refresh_from_db()
    assert task.status == "created"
    admin_client.post(f"/tasks/{task.id}/archive/")
    task.refresh_from_db()
    assert task.archived
    admin_client.post(f"/tasks/{task.id}/restore/")
    task.refresh_from_db()
    assert not task.archived
    response = admin_client.post(f"/tasks/{task.id}/delete/")
    assert response["Location"] == f"/projects/{task.project_id}/"
    assert not Task.objects.filter(pk=task.pk).exists()


def test_next_only_redirects_to_this_site(admin_client, task):
    response = admin_client.post(f"/tasks/{task.id}/archive/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/tasks/{task.id}/"


@pytest.fixture
def queued(admin_user):
    tasks = [services.create_task(user=admin_user, project_name="q", name=n) for n in "abc"]
    for t in tasks:
        services.enqueue_task(t, "line")
    return tasks


def _order():
    return [e.task.name for e in QueueEntry.objects.filter(queue__name="line").order_by(
        "position", "added")]  # fmt: skip


def test_queue_entries_move_up_and_down_and_stop_at_the_ends(admin_client, queued):
    a, b, c = queued
    admin_client.post(f"/queues/tasks/{a.id}/down/")
    assert _order() == ["b", "a", "c"]
    admin_client.post(f"/queues/tasks/{c.id}/up/")
    assert _order() == ["b", "c", "a"]
    admin_client.post(f"/queues/tasks/{b.id}/up/")
    admin_client.post(f"/queues/tasks/{a.id}/down/")
    assert _order() == ["b", "c", "a"]
    admin_client.post(f"/queues/tasks/{c.id}/remove/")
    assert _order() == ["b", "a"]
    c.refresh_from_db()
    assert c.status == "created"


def test_equal_positions_still_swap(admin_client, queued):
    QueueEntry.objects.update(position=0.0)
    before = _order()
    services.move_queue_entry(Task.objects.get(name=before[2]), "up")
    assert _order() == [before[0], before[2], before[1]]


def test_bad_queue_moves_are_messages(admin_client, queued, task):
    response = admin_client.post(f"/queues/tasks/{queued[0].id}/sideways/", follow=True)
    assert any("direction" in m for m in _messages(response))
    response = admin_client.post(f"/queues/tasks/{task.id}/up/", follow=True)
    assert any("not waiting in a queue" in m for m in _messages(response))


def test_a_new_key_is_shown_once_and_revoking_needs_ownership(
    admin_client, admin_user, django_user_model
):
    admin_client.post("/keys/", {"name": "laptop"})
    first = admin_client.get("/keys/")
    secret = first.context["new_key"]["secret"]
    assert secret.encode() in first.content
    assert keys.authenticate_api_key(secret).user == admin_user
    assert admin_client.get("/keys/").context["new_key"] is None

    other = django_user_model.objects.create_user("other")
    theirs, _ = keys.create_api_key(other, kind=ApiKeyKind.USER)
    assert admin_client.post(f"/keys/{theirs.prefix}/revoke/").status_code == 404
    mine = ApiKey.objects.get(user=admin_user, name="laptop")
    admin_client.post(f"/keys/{mine.prefix}/revoke/")
    assert keys.authenticate_api_key(secret) is None
