"""The REST doors of reruns from a step, plans and diffs: what they answer, what they
refuse (bad steps and edits, a run still running, another team's run, a worker key)."""

import pytest
from django.test import Client

from tests.factories import make_user
from tests.unit.test_engine_rerun import _complete, _start, _steps, bases  # noqa: F401
from webapp.core.choices import ApiKeyKind
from webapp.core.keys import create_api_key
from webapp.core.models import PipelineRun, Task, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user()


def _client(user, **key):
    return Client(HTTP_AUTHORIZATION=f"Bearer {create_api_key(user, **key)[1]}")


def _post(client, path, body=None):
    return client.post(f"/api/v1/{path}", body or {}, content_type="application/json")


EDIT = {"stage_process": {"General/test_size": 0.3}}


def test_rerun_from_answers_a_plan_then_a_run_and_nodes_say_why(user, bases):  # noqa: F811
    first = _complete(_start(user, _steps()))
    client = _client(user)
    url = f"pipelines/{first.id}/rerun_from/"
    plan = _post(
        client, url, {"step": "stage_process", "parameter_override": EDIT, "dry_run": True}
    )
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert (body["run"], body["reused"]) == (2, 1)
    assert [(s["name"], s["outcome"]) for s in body["steps"]] == [
        ("stage_data", "reused"),
        ("stage_process", "ran"),
        ("stage_train", "ran"),
    ]
    assert PipelineRun.objects.count() == 1  # a dry run starts nothing
    started = _post(client, url, {"step": "stage_process", "parameter_override": EDIT})
    assert started.status_code == 201, started.text
    run = started.json()
    assert run["rerun_of"] == first.id and run["rerun_from_step"] == "stage_process"
    nodes = {n["name"]: n for n in run["nodes"]}
    assert nodes["stage_data"]["status"] == "cached"
    assert nodes["stage_data"]["decision"]["code"] == "reused_from_run"
    read = client.get(f"/api/v1/pipelines/{first.id}/").json()
    assert {n["name"]: n["decision"]["code"] for n in read["nodes"]} == dict.fromkeys(
        ("stage_data", "stage_process", "stage_train"), "caching_off"
    )


def test_rerun_from_refuses_bad_requests_and_other_callers(user, bases):  # noqa: F811
    running = _start(user, _steps())
    client = _client(user)
    response = _post(client, f"pipelines/{running.id}/rerun_from/", {"step": "stage_process"})
    assert response.status_code == 409
    first = _complete(running)
    url = f"pipelines/{first.id}/rerun_from/"
    for body, words in (
        ({"step": "nope"}, "no step"),
        ({}, "step"),
        (
            {"step": "stage_process", "parameter_override": {"stage_process": {"General/x": 1}}},
            "no parameter",
        ),
        ({"step": "stage_process", "parameter_override": {"stage_data": {}}}, "not below"),
        ({"step": "stage_process", "parameter_override": {"stage_process": 3}}, ""),
        ({"step": "stage_process", "parameter_override": "x"}, ""),
        ({"step": "stage_process", "dry_run": "maybe"}, ""),
    ):
        response = _post(client, url, body)
        assert response.status_code == 400 and words in response.text, (body, response.text)
    stranger = make_user("mallory")
    Team.objects.create(name="theirs").members.add(stranger)
    assert _post(_client(stranger), url, {"step": "stage_process"}).status_code == 404
    other = _client(stranger).get(f"/api/v1/pipelines/{first.id}/diff/")
    assert other.status_code == 404
    worker = _client(make_user("w", staff=False), kind=ApiKeyKind.WORKER)
    assert _post(worker, url, {"step": "stage_process"}).status_code in (403, 404)
    assert PipelineRun.objects.count() == 1


def test_plan_of_a_definition_and_the_diff_with_the_previous_run(user, bases):  # noqa: F811
    client = _client(user)
    body = {"project": "examples", "name": "pipeline demo", "steps": _steps()}
    first_plan = _post(client, "pipelines/plan/", body)
    assert first_plan.status_code == 200, first_plan.text
    assert [s["changes"][0]["code"] for s in first_plan.json()["steps"]] == ["first_run"] * 3
    assert _post(client, "pipelines/plan/", {**body, "steps": [{"name": "x"}]}).status_code == 400
    first = _complete(_start(user, _steps()))
    second = _post(client, f"pipelines/{first.id}/rerun_from/", {"step": "stage_train"}).json()
    assert client.get(f"/api/v1/pipelines/{first.id}/diff/").status_code == 404  # none before
    # what the steps used, as their worker measured it
    Task.objects.filter(pk=first.nodes.get(name="stage_data").task_id).update(
        resource_cpu_seconds=1.25, resource_peak_rss_bytes=64 * 2**20
    )
    diff = client.get(f"/api/v1/pipelines/{second['id']}/diff/").json()
    assert diff["a"]["id"] == first.id
    steps = {s["name"]: s for s in diff["steps"]}
    assert steps["stage_data"]["same"] and steps["stage_data"]["status"]["same_task"]
    assert steps["stage_train"]["status"]["b"]["status"] == "pending"  # not advanced yet
    used = steps["stage_data"]["resources"]  # the same task in both runs
    assert used["cpu_seconds"] == {"a": 1.25, "b": 1.25, "delta": 0.0}
    assert used["peak_rss_bytes"]["a"] == 64 * 2**20 and used["gpu_seconds"]["a"] is None
    assert steps["stage_train"]["resources"]["cpu_seconds"]["b"] is None  # not run yet
    page = Client()
    page.force_login(user)
    text = page.get(f"/pipelines/runs/{second['id']}/diff/").content.decode()
    assert "CPU (s)" in text and "1.25" in text and "64.0 MB" in text
    same = client.get(f"/api/v1/pipelines/{first.id}/diff/", {"other": first.id})
    assert same.status_code == 400
