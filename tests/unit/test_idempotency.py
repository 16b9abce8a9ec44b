"""Idempotency-Key on the API calls that create or move things (webapp/api/idempotency.py)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import make_base_task, make_user
from webapp.api.idempotency import forget_old_requests
from webapp.api.models import IdempotentRequest
from webapp.core.keys import create_api_key
from webapp.core.models import QueueEntry, Task

pytestmark = pytest.mark.django_db


def _caller(username="alice"):
    user = make_user(username)
    return user, Client(HTTP_AUTHORIZATION=f"Bearer {create_api_key(user)[1]}")


def _post(client, path, body=None, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/api/v1/{path}", body or {}, content_type="application/json", **headers)


def test_a_repeated_clone_returns_the_first_answer_and_clones_once():
    user, client = _caller()
    base = make_base_task(user, "base")
    first = _post(client, f"tasks/{base.id}/clone/", {"name": "copy"}, key="clone-0001")
    again = _post(client, f"tasks/{base.id}/clone/", {"name": "copy"}, key="clone-0001")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    assert Task.objects.filter(name="copy").count() == 1
    # a new key is a new request
    third = _post(client, f"tasks/{base.id}/clone/", {"name": "copy"}, key="clone-0002")
    assert third.json()["id"] != first.json()["id"]
    assert Task.objects.filter(name="copy").count() == 2


def test_a_repeated_enqueue_succeeds_again_instead_of_a_conflict():
    user, client = _caller()
    base = make_base_task(user, "base")
    clone = _post(client, f"tasks/{base.id}/clone/", {"name": "copy"}).json()
    first = _post(client, f"tasks/{clone['id']}/enqueue/", {"queue": "default"}, key="enq-00001")
    again = _post(client, f"tasks/{clone['id']}/enqueue/", {"queue": "default"}, key="enq-00001")
    assert first.status_code == again.status_code == 200
    assert again.json()["status"] == "queued"
    assert QueueEntry.objects.filter(task_id=clone["id"]).count() == 1
    # without the key the same call is the conflict it always was
    assert _post(client, f"tasks/{clone['id']}/enqueue/", {"queue": "default"}).status_code == 409


def test_a_key_reused_for_another_request_is_refused():
    user, client = _caller()
    base = make_base_task(user, "base")
    assert (
        _post(client, f"tasks/{base.id}/clone/", {"name": "a"}, key="reused-01").status_code == 201
    )
    other = _post(client, f"tasks/{base.id}/clone/", {"name": "b"}, key="reused-01")
    assert other.status_code == 422
    assert "different request" in other.json()["detail"]
    assert not Task.objects.filter(name="b").exists()


def test_callers_never_share_answers_and_refusals_are_replayed_too():
    alice, alice_client = _caller("alice")
    _, bob_client = _caller("bob")
    base = make_base_task(alice, "base")
    assert _post(alice_client, f"tasks/{base.id}/clone/", key="shared-key").status_code == 201
    # bob's call with the same key is his own request: alice's task is not his to clone
    assert _post(bob_client, f"tasks/{base.id}/clone/", key="shared-key").status_code == 404
    assert _post(bob_client, f"tasks/{base.id}/clone/", key="shared-key").status_code == 404
    assert Task.objects.filter(name="base").count() == 2


def test_bad_keys_and_routes_outside_the_list():
    user, client = _caller()
    base = make_base_task(user, "base")
    bad = _post(client, f"tasks/{base.id}/clone/", key="a b")
    assert bad.status_code == 400 and "Idempotency-Key" in bad.json()["detail"]
    # keys never store answers of other routes (e.g. a minted API key's secret)
    created = _post(client, "keys/", {"name": "ci"}, key="mint-key-1")
    assert created.status_code == 201
    assert not IdempotentRequest.objects.exists()


def test_old_answers_are_forgotten():
    user, client = _caller()
    base = make_base_task(user, "base")
    _post(client, f"tasks/{base.id}/clone/", key="old-answer")
    assert forget_old_requests() == 0
    assert forget_old_requests(now=timezone.now() + timedelta(days=2)) == 1
