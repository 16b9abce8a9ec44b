"""Registered models and their tasks through the ClearML door, as clearml-server's API tests
(test_models, test_tasks_edit, test_tasks_delete, test_batch_operations, test_task_artifacts)
want them: a task's output model published with it, deleted with it when it is a draft,
named `__DELETED__<id>` where it was used; artifacts given inside `execution`; public
objects read-only until made private."""

import uuid

import pytest

from tests.compat.test_conformance import _OUTSIDER
from tests.compat.test_protocol import Api

pytestmark = [pytest.mark.compat, pytest.mark.e2e]


@pytest.fixture(scope="module")
def api(compat_server):
    return Api(compat_server)


def _old(api, version: str, endpoint: str, **body) -> dict:
    """A call as an older client makes it (`/v2.9/...`)."""
    response = api.raw(endpoint, body, version=f"v{version}/")
    payload = response.json()
    assert response.status_code == 200, payload["meta"]
    return payload["data"]


def _model(api, **fields) -> str:
    return api("models.create", name="m", uri=fields.pop("uri", "file:///a"), **fields)["id"]


def _ready(api, model_id: str) -> bool:
    return api("models.get_by_id", model=model_id)["model"]["ready"]


def _status(api, task_id: str) -> str:
    return api("tasks.get_by_id", task=task_id)["task"]["status"]


def _running_with_output(api, **fields) -> tuple[str, str]:
    task_id = api.new_task(**fields)
    api("tasks.started", task=task_id)
    return task_id, api("models.update_for_task", task=task_id, uri="file:///b")["id"]


def test_models_are_created_ready_and_their_labels_counted(api):
    counted = _model(api, labels={"a": 1, "b": 2})
    assert _ready(api, counted) is True
    assert _ready(api, _model(api, ready=False)) is False
    plain = api("models.get_all_ex", id=[counted])["models"][0]
    assert "stats" not in plain
    listed = api("models.get_all_ex", id=[counted], include_stats=True)["models"][0]
    assert listed["stats"] == {"labels_count": 2}


def test_update_for_task_makes_the_tasks_output_model_from_its_execution(api):
    project = api("projects.create", name=f"frameworks/{uuid.uuid4().hex[:8]}")["id"]
    framework = f"framework {uuid.uuid4().hex[:6]}"
    task_id = api(
        "tasks.create",
        name="framed",
        project=project,
        type="training",
        execution={"framework": framework, "model_labels": {"cat": 1}},
    )["id"]
    created = api("models.update_for_task", task=task_id, uri="file:///b", iteration=999)
    assert created["created"] is True
    model = api("models.get_by_id", model=created["id"])["model"]
    assert (model["framework"], model["labels"], model["name"]) == (framework, {"cat": 1}, "framed")
    assert (model["project"], model["task"], model["ready"]) == (project, task_id, False)
    task = api("tasks.get_by_id", task=task_id)["task"]
    assert [m["model"] for m in task["models"]["output"]] == [created["id"]]
    assert task["last_iteration"] == 999
    # The same output model again, updated; the iteration only goes up.
    again = api("models.update_for_task", task=task_id, uri="file:///c", iteration=10)
    assert (again["id"], again["created"]) == (created["id"], False)
    assert api("models.get_by_id", model=created["id"])["model"]["uri"] == "file:///c"
    assert api("tasks.get_by_id", task=task_id)["task"]["last_iteration"] == 999
    api("models.update", model=created["id"], iteration=1500)
    assert api("tasks.get_by_id", task=task_id)["task"]["last_iteration"] == 1500
    assert api("models.get_frameworks", projects=[project])["frameworks"] == [framework]
    for bad in ({"uri": "file:///x", "override_model_id": created["id"]}, {}):
        assert api.error("models.update_for_task", task=task_id, **bad)[0] == 400
    assert api.error("models.update_for_task", task=task_id, uri="x", iteration="x")[0] == 400
    # Deleted with its draft task: no framework left in the project.
    api("tasks.delete", task=task_id, force=True)
    assert api.error("models.get_by_id", model=created["id"])[0] == 400
    assert api("models.get_frameworks", projects=[project])["frameworks"] == []


def test_a_model_is_published_with_its_task_by_the_tasks_rules(api):
    task_id, model_id = _running_with_output(api)
    assert api.error("models.set_ready", model=model_id)[0] == 400  # a running task: 400/110
    assert (_ready(api, model_id), _status(api, task_id)) == (False, "in_progress")
    api("models.set_ready", model=model_id, force_publish_task=True)
    assert (_ready(api, model_id), _status(api, task_id)) == (True, "published")

    task_id, model_id = _running_with_output(api)
    api("tasks.stopped", task=task_id)
    answer = api("models.set_ready", model=model_id)
    assert answer["published_task"]["id"] == task_id
    assert answer["published_task"]["data"]["updated"] == 1
    assert _status(api, task_id) == "published"
    response = api.raw("models.set_ready", {"model": model_id})
    assert response.json()["meta"]["result_subcode"] == 203  # already ready

    # tasks.publish readies the output model, unless told not to.
    for publish_model in (True, False):
        task_id, model_id = _running_with_output(api)
        api("tasks.stopped", task=task_id)
        api("tasks.publish", task=task_id, publish_model=publish_model)
        assert _ready(api, model_id) is publish_model


def test_a_deleted_model_stays_named_where_it_was_used(api):
    task_id, model_id = _running_with_output(api)
    assert api("models.delete", model=model_id) == {"deleted": True, "url": "file:///b"}
    assert api("tasks.get_by_id", task=task_id)["task"]["models"]["output"] == []

    task_id, model_id = _running_with_output(api)
    api("tasks.stopped", task=task_id)
    api("tasks.publish", task=task_id, publish_model=False)
    response = api.raw("models.delete", {"model": model_id})
    assert response.json()["meta"]["result_subcode"] == 206  # its task is published
    api("models.delete", model=model_id, force=True)
    output = api("tasks.get_by_id", task=task_id)["task"]["models"]["output"]
    assert output[0]["model"] == f"__DELETED__{model_id}"

    used = _model(api)
    user = api.new_task()
    api("tasks.add_or_update_model", task=user, name="in", type="input", model=used)
    response = api.raw("models.delete", {"model": used})
    assert response.json()["meta"]["result_subcode"] == 205  # another task's input
    api("models.delete", model=used, force=True)
    inputs = api("tasks.get_by_id", task=user)["task"]["models"]["input"]
    assert inputs[0]["model"] == f"__DELETED__{used}"


def test_an_old_clients_execution_model_is_the_input_model_checked_on_clone(api):
    model_id = _model(api)
    project = api("projects.create", name=f"legacy/{uuid.uuid4().hex[:8]}")["id"]
    task_id = _old(
        api,
        "2.12",
        "tasks.create",
        name="legacy",
        project=project,
        type="testing",
        execution={"model": model_id},
    )["id"]
    task = api("tasks.get_by_id", task=task_id)["task"]
    assert [m["model"] for m in task["models"]["input"]] == [model_id]
    assert "model" not in task["execution"]
    code, _ = api.error(
        "tasks.create",
        name="bad input",
        project=project,
        type="testing",
        models={"input": [{"name": "x", "model": "no such model"}]},
    )
    assert code == 400

    api("models.delete", model=model_id, force=True)
    api("tasks.clone", task=task_id)  # a clone copies what the source names
    for extra in ({"validate_references": True}, {"execution_overrides": {"model": "missing"}}):
        response = api.raw("tasks.clone", {"task": task_id, **extra})
        assert response.json()["meta"]["result_subcode"] == 201
    other = _model(api)
    clone = api("tasks.clone", task=task_id, execution_overrides={"model": other})["id"]
    inputs = api("tasks.get_by_id", task=clone)["task"]["models"]["input"]
    assert [m["model"] for m in inputs] == [other]


def test_reset_and_delete_take_a_tasks_draft_models_and_say_which_urls_were_its(api):
    task_id, model_id = _running_with_output(api)
    answer = api("tasks.reset", task=task_id)
    assert (answer["deleted_models"], answer["urls"]) == (1, None)
    assert api.error("models.get_by_id", model=model_id)[0] == 400
    # Unless another task takes it as its input.
    task_id, model_id = _running_with_output(api)
    api.new_task(models={"input": [{"name": "in", "model": model_id}]})
    assert api("tasks.reset", task=task_id)["deleted_models"] == 0
    assert api("models.get_by_id", model=model_id)["model"]["task"] is None

    # Only a draft is deleted without force, and not with a published child or model.
    draft = api.new_task()
    assert api("tasks.delete", task=draft)["urls"] is None
    stopped = api.new_task()
    api("tasks.started", task=stopped)
    api("tasks.stopped", task=stopped)
    assert api.raw("tasks.delete", {"task": stopped}).json()["meta"]["result_subcode"] == 123
    published = _model(api, uri="ready")
    draft_model = _model(api, uri="not_ready", ready=False)
    owner = api.new_task()
    for linked in (published, draft_model):
        api("models.edit", model=linked, task=owner)
    api(
        "tasks.add_or_update_artifacts",
        task=owner,
        artifacts=[
            {"key": "in", "type": "str", "uri": "input-uri", "mode": "input"},
            {"key": "out", "type": "str", "uri": "output-uri"},
        ],
    )
    assert api.raw("tasks.delete", {"task": owner}).json()["meta"]["result_subcode"] == 123
    answer = api("tasks.delete", task=owner, force=True, return_file_urls=True)
    assert (answer["updated_models"], answer["deleted_models"]) == (1, 1)
    assert answer["urls"] == {
        "model_urls": ["not_ready"],
        "event_urls": [],
        "artifact_urls": ["output-uri"],
    }
    assert api("models.get_by_id", model=published)["model"]["task"] is None


def test_a_child_outlives_its_deleted_parent_and_validates(api):
    parent = api.new_task()
    project = api("tasks.get_by_id", task=parent)["task"]["project"]
    child = api("tasks.create", name="child", type="training", parent=parent, project=project)
    child = child["id"]
    api("tasks.started", task=child)
    api("tasks.stopped", task=child)
    api("tasks.publish", task=child)
    assert api.raw("tasks.delete", {"task": parent}).json()["meta"]["result_subcode"] == 123
    assert api("tasks.delete", task=parent, force=True)["updated_children"] == 1
    document = api("tasks.get_by_id", task=child)["task"]
    assert document["parent"] is None
    assert api("tasks.validate", **document) == {}
    assert api.error("tasks.validate", name="no", type="training")[0] == 400
    assert api.error("tasks.validate", name="bad type", type="nonsense")[0] == 400


def test_artifacts_given_in_execution_on_create_edit_and_clone(api):
    def keys(task_id):
        artifacts = api("tasks.get_by_id", task=task_id)["task"]["execution"]["artifacts"]
        return [(a["key"], a["uri"], a["mode"]) for a in artifacts]

    task_id = api.new_task(
        execution={
            "artifacts": [
                {"key": "b", "type": "int", "uri": "u2"},
                {"key": "a", "type": "str", "uri": "u1", "mode": "input"},
            ]
        }
    )
    assert keys(task_id) == [("a", "u1", "input"), ("b", "u2", "output")]
    api(
        "tasks.edit",
        task=task_id,
        execution={
            "artifacts": [
                {"key": "bb", "type": "str", "uri": "u3", "mode": "output"},
                {"key": "aa", "type": "int", "uri": "u4", "mode": "input"},
            ]
        },
    )
    assert keys(task_id) == [("aa", "u4", "input"), ("bb", "u3", "output")]
    assert keys(api("tasks.clone", task=task_id)["id"]) == [("aa", "u4", "input")]
    overridden = api(
        "tasks.clone",
        task=task_id,
        execution_overrides={
            "artifacts": [{"key": "x", "type": "str", "uri": "x", "mode": "input"}]
        },
    )["id"]
    assert keys(overridden) == [("x", "x", "input")]
    api("tasks.started", task=task_id)
    api("tasks.reset", task=task_id)
    assert keys(task_id) == [("aa", "u4", "input")]  # an input is part of the definition


def test_a_clone_answers_the_script_fields_that_were_set(api):
    script = {
        "binary": "python",
        "requirements": {"pip": ["six"]},
        "repository": "https://example.com/foo/bar",
        "entry_point": "test.py",
    }
    task_id = api.new_task(script=script)
    clone = api("tasks.clone", task=task_id)["id"]
    assert api("tasks.get_by_id", task=clone)["task"]["script"] == script
    api("tasks.edit", task=clone, script={"branch": "dev"})
    assert api("tasks.get_by_id", task=clone)["task"]["script"] == {**script, "branch": "dev"}


def test_models_many_each_on_its_own(api):
    task_id = api.new_task()
    drafted, ready = _model(api, ready=False, task=task_id), _model(api, uri="file:///r")
    missing = uuid.uuid4().hex
    answer = api("models.publish_many", ids=[drafted, ready, missing], force_publish_task=True)
    assert [s["id"] for s in answer["succeeded"]] == [drafted]
    assert answer["succeeded"][0]["published_task"]["id"] == task_id
    assert {f["id"]: f["error"]["codes"] for f in answer["failed"]} == {
        ready: [400, 203],
        missing: [400, 201],
    }
    assert api("models.archive_many", ids=[drafted, ready])["failed"] == []
    listed = api("models.get_all_ex", id=[drafted, ready])["models"]
    assert all("archived" in m["system_tags"] for m in listed)
    api("models.unarchive_many", ids=[drafted, ready])
    listed = api("models.get_all_ex", id=[drafted, ready])["models"]
    assert not any("archived" in m["system_tags"] for m in listed)
    answer = api("models.delete_many", ids=[drafted, ready, missing], force=True)
    assert sorted(s["url"] for s in answer["succeeded"]) == ["file:///a", "file:///r"]
    assert api("models.get_all_ex", id=[drafted, ready])["models"] == []


def test_public_tasks_and_models_are_read_only_until_made_private(compat_server, api):
    task_id = api.new_task()
    api("tasks.started", task=task_id)
    assert api.raw("tasks.make_private", {"ids": [task_id]}).json()["meta"]["result_code"] == 400
    outsider = Api(compat_server, compat_server.manage("shell", "-c", _OUTSIDER).strip())
    assert outsider.error("tasks.make_public", ids=[task_id])[0] == 400  # not seen by it
    assert api("tasks.make_public", ids=[task_id]) == {"updated": 1}
    assert [t["id"] for t in api("tasks.get_all_ex", id=[task_id])["tasks"]] == [task_id]
    meta = api.raw("tasks.stopped", {"task": task_id}).json()["meta"]
    assert (meta["result_code"], meta["result_subcode"]) == (403, 21)
    assert outsider("tasks.get_all_ex", id=[task_id])["tasks"] == []  # no wider than before
    assert api("tasks.make_private", ids=[task_id]) == {"updated": 1}
    api("tasks.stopped", task=task_id)

    model_id = _model(api)
    assert api.raw("models.make_private", {"ids": [model_id]}).json()["meta"]["result_subcode"] == (
        201
    )
    assert api("models.make_public", ids=[model_id]) == {"updated": 1}
    assert api("models.get_by_id", model=model_id)["model"]["public"] is True
    meta = api.raw("models.update", {"model": model_id, "name": "x"}).json()["meta"]
    assert meta["result_subcode"] == 201
    assert api("models.make_private", ids=[model_id]) == {"updated": 1}
    api("models.update", model=model_id, name="changed")
    assert api("models.get_by_id", model=model_id)["model"]["name"] == "changed"


def test_a_model_named_as_input_must_be_one_the_caller_sees(compat_server, api):
    model_id = _model(api)
    outsider = Api(compat_server, compat_server.manage("shell", "-c", _OUTSIDER).strip())
    project = outsider("projects.create", name=f"borrow/{uuid.uuid4().hex[:8]}")["id"]
    inputs = {"input": [{"name": "in", "model": model_id}]}
    body = {"name": "borrower", "project": project, "type": "training", "models": inputs}
    meta = outsider.raw("tasks.create", body).json()["meta"]
    assert (meta["result_code"], meta["result_subcode"]) == (400, 201)
    assert outsider("tasks.create", **{**body, "models": {"input": []}})["id"]
