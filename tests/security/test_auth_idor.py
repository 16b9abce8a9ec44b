"""R32 auth bypass and IDOR, R29 foreign base tasks: every URL pattern, every credential.

The URL patterns come from Django's resolver, so a new endpoint is swept as soon as it is
routed: one reachable without credentials, or one that tells a foreign object from a
missing one, fails here.
"""

import base64
import re

import pytest
from django.test import Client
from django.urls import URLResolver, get_resolver

from webapp.core import execution, services, status
from webapp.core.keys import authenticate_api_key
from webapp.core.models import DebugSample, Task

METHODS = ("get", "post", "put", "patch", "delete")
MISSING = "f" * 32
# Reachable without logging in, on purpose.
PUBLIC = {"healthz", "login", "logout", "plotly", "favicon"}
# The ClearML wire protocol has its own front door and credentials (webapp/compat, tested
# in tests/compat); the admin has Django's own login, checked separately below.
OTHER_DOORS = ("clearml-api/", "clearml-files", "admin/")


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.name


def _concrete(route: str, values: dict) -> str:
    """A URL for a route or regex pattern, each parameter filled from `values`."""

    def value(name: str) -> str:
        return str(values.get(name, values.get("*", MISSING)))

    url = re.sub(
        r"\(\?P<(\w+)>[^)]*\)",
        lambda m: "json" if m.group(1) == "format" else value(m.group(1)),
        route,
    )
    url = re.sub(
        r"<(?:(\w+):)?(\w+)>",
        lambda m: _converted(m.group(1), m.group(2), values, value),
        url,
    )
    # An optional group of a regex pattern (the ClearML links' `(?:/(?P<rest>.*))?`) is left
    # out: the shortest URL it matches.
    url = re.sub(r"\(\?:[^()]*\)\?", "", url)
    url = url.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    return "/" + url


def _converted(converter: str | None, name: str, values: dict, value) -> str:
    if converter == "drf_format_suffix":
        return ".json"
    if converter == "int":
        return str(values.get(name, 987654))
    return value(name)


def all_routes():
    return [(route, name) for route, name in _walk(get_resolver().url_patterns)]


def _api_routes():
    return [(route, name) for route, name in all_routes() if route.startswith(("api/", "files/"))]


def _dashboard_routes():
    return [
        (route, name)
        for route, name in all_routes()
        if not route.lstrip("^").startswith(("api/", "files/", *OTHER_DOORS)) and name not in PUBLIC
    ]


@pytest.mark.django_db
def test_every_api_route_refuses_missing_bad_revoked_expired_and_basic_credentials(world, settings):
    # Hundreds of bad keys from one address: the lockout would answer 429 long before the
    # sweep ends (tests/security/test_lockout.py proves it); here every answer must be 401.
    settings.API_KEY_FAILURE_LIMIT = 0
    basic = base64.b64encode(b"alice:pw-alice").decode()
    headers = {
        "none": {},
        "garbage": {"HTTP_AUTHORIZATION": "Bearer pk_0123456789ab_garbage"},
        "malformed": {"HTTP_AUTHORIZATION": "Bearer"},
        "revoked": {"HTTP_AUTHORIZATION": f"Bearer {world.keys['revoked']}"},
        "expired": {"HTTP_AUTHORIZATION": f"Bearer {world.keys['expired']}"},
        "basic": {"HTTP_AUTHORIZATION": f"Basic {basic}"},
    }
    routes = _api_routes()
    assert len(routes) > 40
    client = Client()
    for route, name in routes:
        url = _concrete(route, {})
        for label, extra in headers.items():
            for method in METHODS:
                response = getattr(client, method)(url, **extra)
                assert response.status_code == 401, (label, method, url, name)
                if response["Content-Type"].startswith("application/json"):
                    error = response.json()["error"]
                    assert error in ("not_authenticated", "authentication_failed")


@pytest.mark.django_db
def test_every_dashboard_route_sends_anonymous_callers_to_the_login(world):
    client = Client()
    routes = _dashboard_routes()
    assert len(routes) > 20
    for route, name in routes:
        url = _concrete(route, {"version": "0", "direction": "up"})
        # an API key is not a dashboard credential: the session is
        for extra in ({}, {"HTTP_AUTHORIZATION": f"Bearer {world.keys['alice']}"}):
            for method in ("get", "post"):
                response = getattr(client, method)(url, **extra)
                assert response.status_code == 302, (method, url, name, response.status_code)
                assert response["Location"].startswith("/login/"), (url, response["Location"])
    response = client.get("/admin/core/task/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def _sample(task):
    return DebugSample.objects.create(
        task=task, title="t", series="s", iteration=0, storage_key="tasks/x/samples/1/a.png"
    )


def _values(world, sample) -> dict:
    return {
        "project": {"pk": world.objects["project"].id},
        "task": {"pk": world.objects["base"].id},
        "artifact": {
            "pk": world.objects["artifact"].id,
            "artifact_id": world.objects["artifact"].id,
        },
        "pipeline": {"pk": world.objects["run"].id},
        "team": {"pk": world.red.id},
        "sample": {"sample_id": sample.id},
        "file": {"artifact_id": world.objects["artifact"].id, "filename": "data.bin"},
    }


def _kind(name: str) -> str | None:
    for kind in ("project", "task", "artifact", "pipeline", "team", "sample", "file"):
        if name and name.startswith(kind):
            return kind
    return None


@pytest.mark.django_db
def test_user_b_gets_the_same_not_found_for_user_a_objects_as_for_missing_ones(world):
    """GET, PATCH, PUT, DELETE and every POST action on another team's objects."""
    sample = _sample(world.objects["running"])
    values = _values(world, sample)
    bob = world.client("bob")
    tasks_before = world.objects["project"].tasks.count()
    checked = 0
    for route, name in _api_routes():
        kind = _kind(name)
        without_format = re.sub(r"\(\?P<format>[^)]*\)|<drf_format_suffix:format>", "", route)
        if kind is None or "<" not in without_format:
            continue  # a list or a route with no object in it
        foreign = _concrete(route, values[kind])
        missing = _concrete(route, {"*": MISSING})
        for method in METHODS:
            mine = getattr(bob, method)(foreign, {}, format="json")
            none = getattr(bob, method)(missing, {}, format="json")
            assert mine.status_code == none.status_code, (method, foreign, mine.content)
            assert mine.status_code in (403, 404, 405), (method, foreign, mine.status_code)
            if mine.status_code == 404:
                assert mine.json() == none.json(), (method, foreign)
            checked += 1
    assert checked > 150
    # the readable-by-owner paths say 404, never 403 (no existence oracle)
    for url in (
        f"/api/v1/tasks/{world.objects['base'].id}/",
        f"/api/v1/projects/{world.objects['project'].id}/",
        f"/api/v1/artifacts/{world.objects['artifact'].id}/download/",
        f"/files/{world.objects['artifact'].id}/data.bin",
        f"/api/v1/pipelines/{world.objects['run'].id}/",
        f"/api/v1/samples/{sample.id}/",
    ):
        assert bob.get(url).status_code == 404, url
    # and nothing changed
    world.objects["base"].refresh_from_db()
    assert world.objects["base"].status == "created"
    assert world.objects["project"].tasks.count() == tasks_before


@pytest.mark.django_db
def test_lists_never_show_another_teams_rows(world):
    bob = world.client("bob")
    services.create_task(user=world.bob, project_name="blue/p", name="bobs")
    for path in ("tasks", "projects", "pipelines", "teams"):
        data = bob.get(f"/api/v1/{path}/?archived=1").json()
        rows = data["results"] if isinstance(data, dict) else data
        text = str(rows)
        for alice_id in (world.objects["base"].id, world.objects["project"].id, world.red.id):
            assert alice_id not in text, path
    assert [r["name"] for r in bob.get("/api/v1/tasks/").json()["results"]] == ["bobs"]


@pytest.mark.django_db
def test_user_b_on_user_a_objects_in_the_dashboard_gets_404(world, client):
    client.login(username="bob", password="pw-bob")
    task, run = world.objects["base"], world.objects["run"]
    sample = _sample(task)
    gets = [
        f"/projects/{world.objects['project'].id}/",
        f"/tasks/{task.id}/",
        f"/tasks/{task.id}/configuration/",
        f"/tasks/{task.id}/status/",
        f"/tasks/{task.id}/console-lines/",
        f"/tasks/{task.id}/samples/{sample.id}/",
        f"/pipelines/runs/{run.id}/",
        f"/pipelines/runs/{run.id}/state/",
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    posts = [
        f"/tasks/{task.id}/{verb}/"
        for verb in (
            "clone",
            "enqueue",
            "dequeue",
            "abort",
            "reset",
            "archive",
            "restore",
            "delete",
            "hyperparameters",
        )
    ]
    posts += [f"/pipelines/runs/{run.id}/abort/", f"/pipelines/runs/{run.id}/rerun/"]
    posts += [f"/queues/tasks/{task.id}/up/", f"/queues/tasks/{task.id}/remove/"]
    for url in posts:
        assert client.post(url, {"queue": "default", "name": "x"}).status_code == 404, url
    assert Task.objects.filter(pk=task.pk, status="created", archived=False).exists()
    assert b"red/private" not in client.get("/projects/").content
    assert task.id.encode() not in client.get("/tasks/status/", {"ids": task.id}).content


@pytest.mark.django_db
def test_a_task_key_changes_only_its_own_task_and_dies_with_the_run(world):
    running, base = world.objects["running"], world.objects["base"]
    step = world.client("task")
    # it reads what its owner reads
    assert step.get(f"/api/v1/tasks/{base.id}/").status_code == 200
    # and changes nothing but its own task
    for method, url, body in (
        ("patch", f"/api/v1/tasks/{base.id}/", {"comment": "x"}),
        ("post", f"/api/v1/tasks/{base.id}/enqueue/", {}),
        ("post", f"/api/v1/tasks/{base.id}/console/", {"lines": [{"text": "x"}]}),
        ("put", f"/api/v1/tasks/{base.id}/hyperparameters/", {"values": {}}),
        ("post", f"/api/v1/pipelines/{world.objects['run'].id}/stop/", {}),
    ):
        response = getattr(step, method)(url, body, format="json")
        assert response.status_code == 403, (url, response.content)
    own = step.post(
        f"/api/v1/tasks/{running.id}/console/", {"lines": [{"text": "hi"}]}, format="json"
    )
    assert own.status_code == 200
    # the run ends: its key stops working everywhere
    key = authenticate_api_key(world.keys["task"])
    status.change(running, "completed")
    from webapp.core.keys import revoke_task_keys

    revoke_task_keys(running)
    assert key.task_id == running.id
    assert step.get("/api/v1/me/").status_code == 401
    assert step.post(f"/api/v1/tasks/{running.id}/console/", {}, format="json").status_code == 401


@pytest.mark.django_db
def test_a_step_key_is_revoked_when_the_worker_reports_the_end(world):
    task = services.create_task(user=world.alice, project_name="red/private", name="step")
    services.enqueue_task(task, "default")
    task.refresh_from_db()
    task, secret = execution.claim_task(task.id, task.attempt, "w")
    client = world.client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/me/").json()["key_task"] == task.id
    execution.finish_task(task, task.attempt, "completed")
    assert client.get("/api/v1/me/").status_code == 401


@pytest.mark.django_db
def test_a_worker_key_reads_and_runs_tasks_but_calls_no_user_or_admin_verbs(world):
    worker = world.client("worker")
    base = world.objects["base"]
    assert worker.get(f"/api/v1/tasks/{base.id}/").status_code == 200
    for method, url, body in (
        ("patch", f"/api/v1/tasks/{base.id}/", {"comment": "x"}),
        ("post", f"/api/v1/tasks/{base.id}/enqueue/", {}),
        ("post", f"/api/v1/tasks/{base.id}/clone/", {}),
        ("post", f"/api/v1/tasks/{base.id}/abort/", {}),
        ("post", "/api/v1/tasks/", {"project_name": "x", "name": "y"}),
        ("post", "/api/v1/projects/", {"name": "x"}),
        ("post", "/api/v1/teams/", {"name": "x"}),
        ("post", "/api/v1/keys/", {}),
        ("post", f"/api/v1/pipelines/{world.objects['run'].id}/stop/", {}),
    ):
        response = getattr(worker, method)(url, body, format="json")
        assert response.status_code == 403, (url, response.content)
    base.refresh_from_db()
    assert (base.status, base.comment) == ("created", "")
    beat = worker.post(
        "/api/v1/workers/heartbeat/", {"name": "w1", "queues": ["default"]}, format="json"
    )
    assert beat.status_code == 200


@pytest.mark.django_db
def test_unknown_deleted_and_foreign_base_tasks_give_one_answer(world):
    """R29: the error cannot tell which of the three it was, and nothing is created."""
    own = services.create_task(user=world.bob, project_name="blue/p", name="gone")
    deleted_id = own.id
    services.delete_task(own)
    controller = services.create_task(
        user=world.bob, project_name="blue/p", name="ctl", task_type="controller"
    )
    bob = world.client("bob")
    answers = []
    for base_id in (MISSING, deleted_id, world.objects["base"].id):
        response = bob.post(
            "/api/v1/pipelines/",
            {
                "controller": controller.id,
                "steps": [{"name": "s", "base_task_id": base_id}],
            },
            format="json",
        )
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1] == answers[2], answers
    status, body = answers[0]
    assert status == 404
    assert body["detail"] == "step 's': base task not found"
    assert (body["step"], body["parameter"]) == ("s", "base_task_id")
    # no partial pipeline: no run, no clone, the controller untouched
    controller.refresh_from_db()
    assert controller.status == "created"
    assert not hasattr(controller, "pipeline_run")
    assert Task.objects.filter(parent=world.objects["base"]).count() == 0
    # by name: another team's base task is just as absent as a missing one
    by_name = bob.post(
        "/api/v1/pipelines/",
        {
            "controller": controller.id,
            "steps": [{"name": "s", "base_task_project": "red/private", "base_task_name": "base"}],
        },
        format="json",
    )
    missing = bob.post(
        "/api/v1/pipelines/",
        {
            "controller": controller.id,
            "steps": [{"name": "s", "base_task_project": "red/private", "base_task_name": "nope"}],
        },
        format="json",
    )
    assert by_name.status_code == missing.status_code == 400
    assert by_name.json()["detail"].replace("'base'", "'nope'") == missing.json()["detail"]
