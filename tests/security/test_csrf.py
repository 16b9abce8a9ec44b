"""R33: CSRF on dashboard buttons, the admin and session-authenticated API calls."""

import pytest
from django.test import Client

from webapp.core import services
from webapp.core.models import QueueEntry, Task

EVIL = "http://evil.example"


def _snapshot():
    return (
        sorted(Task.objects.values_list("id", "status", "archived", "name")),
        QueueEntry.objects.count(),
    )


@pytest.fixture
def browser(world):
    """alice's browser, with Django's CSRF checks on (the test client turns them off)."""
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="alice", password="pw-alice")
    page = client.get(f"/tasks/{world.objects['base'].id}/")
    assert page.status_code == 200
    client.token = client.cookies["csrftoken"].value
    return client


@pytest.mark.django_db
def test_dashboard_buttons_refuse_missing_token_evil_origin_and_get(world, browser):
    task = world.objects["base"]
    before = _snapshot()
    for verb in ("clone", "enqueue", "abort", "delete", "archive", "hyperparameters"):
        url = f"/tasks/{task.id}/{verb}/"
        assert browser.post(url, {"queue": "default"}).status_code == 403, verb
        forged = browser.post(
            url, {"csrfmiddlewaretoken": browser.token, "queue": "default"}, HTTP_ORIGIN=EVIL
        )
        assert forged.status_code == 403, verb
        assert browser.get(url).status_code == 405, verb
    for url in (
        f"/pipelines/runs/{world.objects['run'].id}/abort/",
        f"/queues/tasks/{task.id}/remove/",
        "/keys/",
    ):
        assert browser.post(url, {"name": "x"}).status_code == 403, url
    assert _snapshot() == before
    # the same button with the page's token from the page's origin works
    done = browser.post(
        f"/tasks/{task.id}/enqueue/",
        {"csrfmiddlewaretoken": browser.token, "queue": "default"},
        HTTP_ORIGIN="http://testserver",
    )
    assert done.status_code == 302
    task.refresh_from_db()
    assert task.status == "queued"


@pytest.mark.django_db
def test_admin_actions_need_the_token(world):
    admin = Client(enforce_csrf_checks=True)
    assert admin.login(username="root", password="pw-root")
    admin.get("/admin/core/task/")
    token = admin.cookies["csrftoken"].value
    task = world.objects["base"]
    body = {"action": "enqueue_default", "_selected_action": [task.id]}
    before = _snapshot()
    assert admin.post("/admin/core/task/", body).status_code == 403
    forged = admin.post(
        "/admin/core/task/", {**body, "csrfmiddlewaretoken": token}, HTTP_ORIGIN=EVIL
    )
    assert forged.status_code == 403
    assert _snapshot() == before
    ok = admin.post("/admin/core/task/", {**body, "csrfmiddlewaretoken": token})
    assert ok.status_code == 302
    task.refresh_from_db()
    assert task.status == "queued"


@pytest.mark.django_db
def test_session_api_calls_need_the_token_and_key_calls_do_not(world, browser):
    task = world.objects["base"]
    # the browser's session cookie cannot be used by another site to call the API
    response = browser.post(
        f"/api/v1/tasks/{task.id}/enqueue/", {}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    # a garbage key beside the session cookie is refused, not silently ignored
    mixed = browser.post(
        f"/api/v1/tasks/{task.id}/enqueue/",
        {},
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer pk_0123456789ab_nope",
    )
    assert mixed.status_code == 401
    task.refresh_from_db()
    assert task.status == "created"
    # an SDK call with its key needs no CSRF token (no cookie is involved)
    sdk = Client(enforce_csrf_checks=True)
    response = sdk.post(
        f"/api/v1/tasks/{task.id}/enqueue/",
        {},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {world.keys['alice']}",
    )
    assert response.status_code == 200, response.content
    # with the token, the session works too (the dashboard's own fetches)
    other = services.create_task(user=world.alice, project_name="red/private", name="o")
    ok = browser.post(
        f"/api/v1/tasks/{other.id}/enqueue/",
        {},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=browser.token,
    )
    assert ok.status_code == 200
