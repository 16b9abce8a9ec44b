"""The API doors of fan-outs and of runs a script drives or builds: who may report a
batch's items, add steps, resolve or launch a step, and what they may send."""

import pytest
from django.test import Client

from tests.factories import make_base_task, make_controller, make_user
from webapp.core import engine, execution
from webapp.core.choices import ApiKeyKind
from webapp.core.keys import create_api_key
from webapp.core.models import PipelineNode, PipelineRun, Team

pytestmark = pytest.mark.django_db


def _client(user, **key):
    return Client(HTTP_AUTHORIZATION=f"Bearer {create_api_key(user, **key)[1]}")


def _post(client, path, body=None):
    return client.post(f"/api/v1/{path}", body or {}, content_type="application/json")


def _map_run(user):
    make_base_task(user, "square fn")
    steps = [
        {
            "name": "square",
            "base_task_name": "square fn",
            "map": {"kwarg": "x", "items": [1, 2, 3, 4], "items_per_task": 2},
        }
    ]
    run = engine.start_run(user=user, controller=make_controller(user), steps=steps)
    engine.advance(run.id)
    batches = list(PipelineNode.objects.filter(run=run).exclude(map_step="").select_related("task"))
    for batch in batches:
        execution.claim_task(batch.task.id, batch.task.attempt, "w")
        engine.advance(run.id, changed_task_id=batch.task_id, task_status="in_progress")
    return run, batches


def test_only_a_batchs_own_task_reports_its_items_and_only_its_own():
    user = make_user()
    run, (first, second) = _map_run(user)
    key = _client(user, kind=ApiKeyKind.TASK, task=first.task)
    done = {"index": 0, "status": "completed", "values": {"y": 1}}
    response = _post(key, f"tasks/{first.task_id}/map_items/", {"items": [done]})
    assert response.status_code == 200 and response.json() == {"recorded": 1}
    assert _post(key, f"tasks/{first.task_id}/map_items/", {"items": [done]}).json() == {
        "recorded": 0
    }
    # another batch's task, another batch's item, a worker key, a task that runs no items
    assert _post(key, f"tasks/{second.task_id}/map_items/", {"items": [done]}).status_code == 403
    theirs = {"index": 2, "status": "completed"}
    response = _post(key, f"tasks/{first.task_id}/map_items/", {"items": [theirs]})
    assert response.status_code == 400 and "item 2 is not one of this task's" in response.text
    worker = _client(make_user("w", staff=True), kind=ApiKeyKind.WORKER)
    response = _post(worker, f"tasks/{first.task_id}/map_items/", {"items": [done]})
    assert response.status_code == 403
    owner = _client(user)
    response = _post(owner, f"tasks/{run.controller_id}/map_items/", {"items": [done]})
    assert response.status_code == 404
    # what an item may say
    for bad in (
        {"index": 1, "status": "done"},
        {"index": -1, "status": "failed"},
        {"index": 1, "status": "completed", "values": {"y": "x" * 70_000}},
        {"index": 1, "status": "completed", "values": {f"r{i}": i for i in range(101)}},
        {"index": 1, "status": "failed", "started": "inf"},
    ):
        response = _post(key, f"tasks/{first.task_id}/map_items/", {"items": [bad]})
        assert response.status_code == 400, (bad, response.text)
    page = owner.get(f"/api/v1/pipelines/{run.id}/items/", {"step": "square"}).json()
    assert [(item["index"], item["status"]) for item in page["items"]] == [
        (0, "completed"),
        (1, "running"),
        (2, "running"),
        (3, "running"),
    ]
    assert (
        owner.get(f"/api/v1/pipelines/{run.id}/items/", {"step": "x", "limit": 0}).status_code
        == 400
    )


def test_a_runs_nodes_are_its_steps_and_its_batches_are_read_as_items():
    user = make_user()
    run, _ = _map_run(user)
    data = _client(user).get(f"/api/v1/pipelines/{run.id}/").json()
    assert [node["name"] for node in data["nodes"]] == ["square"]


def test_steps_are_added_only_to_an_open_run_by_whoever_may_change_it():
    user = make_user()
    make_base_task(user, "a fn")
    client = _client(user)
    controller = make_controller(user)
    body = {"controller": controller.id, "steps": [], "definition": "open"}
    response = _post(client, "pipelines/", body)
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    step = {"name": "a", "base_task_name": "a fn"}
    response = _post(client, f"pipelines/{run_id}/steps/", {"steps": [step]})
    assert response.status_code == 201 and [n["name"] for n in response.json()["nodes"]] == ["a"]
    again = _post(client, f"pipelines/{run_id}/steps/", {"steps": [step]})
    assert again.status_code == 400 and "duplicate step name" in again.text
    stranger = make_user("mallory")
    Team.objects.create(name="theirs").members.add(stranger)
    response = _post(_client(stranger), f"pipelines/{run_id}/steps/", {"steps": [step]})
    assert response.status_code == 404
    other_task = _client(user, kind=ApiKeyKind.TASK, task=make_controller(user, "other"))
    response = _post(other_task, f"pipelines/{run_id}/steps/", {"steps": [{**step, "name": "b"}]})
    assert response.status_code == 403
    fixed = _post(
        client, "pipelines/", {"controller": make_controller(user, "f").id, "steps": [step]}
    )
    response = _post(
        client, f"pipelines/{fixed.json()['id']}/steps/", {"steps": [{**step, "name": "b"}]}
    )
    assert response.status_code == 409
    empty = _post(client, "pipelines/", {"controller": make_controller(user, "e").id, "steps": []})
    assert empty.status_code == 400 and "at least one step" in empty.text
    assert _post(client, f"pipelines/{run_id}/close/").json()["definition"] == "closed"
    assert PipelineRun.objects.get(pk=run_id).status == "running"  # a is still queued


def test_a_callback_is_shown_secrets_masked_and_a_mask_given_back_keeps_the_value():
    user = make_user()
    make_base_task(user, "a fn", params={"password": "s3cret-value"})
    make_base_task(user, "b fn", params={"password": "", "size": 1})
    steps = [
        {"name": "a", "base_task_name": "a fn"},
        {
            "name": "b",
            "base_task_name": "b fn",
            "parents": ["a"],
            "parameter_override": {
                "General/password": "${a.parameters.General/password}",
                "General/size": 2,
            },
        },
    ]
    run = engine.start_run(
        user=user, controller=make_controller(user), steps=steps, driver="client"
    )
    client = _client(user)
    _post(client, f"pipelines/{run.id}/launch/", {"step": "a"})
    response = _post(client, f"pipelines/{run.id}/resolve/", {"step": "b"})
    shown = response.json()["parameters"]
    assert shown == {"General/password": "********", "General/size": 2}
    edited = {**shown, "General/size": 7}
    response = _post(client, f"pipelines/{run.id}/launch/", {"step": "b", "parameters": edited})
    assert response.status_code == 200, response.text
    task = PipelineNode.objects.select_related("task").get(run=run, name="b").task
    assert task.hyperparameters["General"]["password"]["value"] == "s3cret-value"
    assert task.hyperparameters["General"]["size"]["value"] == "7"
    assert _post(client, f"pipelines/{run.id}/resolve/", {"step": "b"}).status_code == 409
