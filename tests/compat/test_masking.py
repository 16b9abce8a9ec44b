"""Secret-looking parameter values in ClearML documents: masked for every caller except the
one running the task (its own key, or the key that pulled it or marked it started), on a
live server. The SDK side (a remote task still reads its real values) is in
test_clearml_sdk.py and test_clearml_worker.py."""

import uuid

import pytest

from tests.compat.test_protocol import Api

pytestmark = [pytest.mark.compat, pytest.mark.e2e]

MASK = "********"
PASSWORD = "s3cret-value-123"
TOKEN = "tok-abcdef-123456"

_COLLEAGUE = """
from django.contrib.auth import get_user_model
from webapp.core.keys import create_api_key
from webapp.core.models import Project, Team
User = get_user_model()
colleague, _ = User.objects.get_or_create(username="colleague")
team, _ = Team.objects.get_or_create(name="masking team")
team.members.add(colleague, User.objects.get(username="admin"))
Project.objects.filter(pk="{project}").update(team=team)
print(create_api_key(colleague)[1])
"""
_TASK_KEY = """
from webapp.core.keys import create_api_key
from webapp.core.models import Task
task = Task.objects.get(pk="{task}")
print(create_api_key(task.created_by, kind="task", task=task)[1])
"""


def _param(section: str, name: str, value: str) -> dict:
    return {"section": section, "name": name, "value": value, "type": "str", "description": ""}


def _values(api: Api, task_id: str) -> dict:
    """What `api` reads of the task through each of the four document endpoints."""
    doc = api("tasks.get_by_id", task=task_id)["task"]
    listed = api("tasks.get_all", id=[task_id], only_fields=["hyperparams", "configuration"])
    params = api("tasks.get_hyper_params", tasks=[task_id])["params"][0]["hyperparams"]
    configs = api("tasks.get_configurations", tasks=[task_id])["configurations"][0]
    return {
        "get_by_id": (
            doc["hyperparams"]["General"]["db_password"]["value"],
            doc["configuration"]["api_token"]["value"],
        ),
        "get_all": (
            listed["tasks"][0]["hyperparams"]["General"]["db_password"]["value"],
            listed["tasks"][0]["configuration"]["api_token"]["value"],
        ),
        "get_hyper_params": next(p["value"] for p in params if p["name"] == "db_password"),
        "get_configurations": next(
            c["value"] for c in configs["configuration"] if c["name"] == "api_token"
        ),
        "harmless": doc["hyperparams"]["General"]["lr"]["value"],
    }


def _masked(values: dict) -> bool:
    secrets = [*values["get_by_id"], *values["get_all"]]
    secrets += [values["get_hyper_params"], values["get_configurations"]]
    assert values["harmless"] == "0.1"
    if all(value == MASK for value in secrets):
        return True
    assert secrets == [PASSWORD, TOKEN, PASSWORD, TOKEN, PASSWORD, TOKEN], values
    return False


def test_only_the_key_running_a_task_reads_its_secret_parameters(compat_server):
    owner = Api(compat_server)
    worker = Api(compat_server, compat_server.worker_key)
    project = owner("projects.create", name=f"masking/{uuid.uuid4().hex[:8]}")["id"]
    task_id = owner(
        "tasks.create",
        name="masked task",
        project=project,
        type="training",
        hyperparams={
            "General": {
                "db_password": _param("General", "db_password", PASSWORD),
                "lr": _param("General", "lr", "0.1"),
            }
        },
        configuration={"api_token": {"name": "api_token", "value": TOKEN, "type": "str"}},
    )["id"]
    colleague_key = compat_server.manage("shell", "-c", _COLLEAGUE.format(project=project))
    colleague = Api(compat_server, colleague_key.strip().splitlines()[-1])
    task_key = compat_server.manage("shell", "-c", _TASK_KEY.format(task=task_id))
    own = Api(compat_server, task_key.strip().splitlines()[-1])

    # given a draft: nobody runs it, so its owner, a teammate and a worker key see masks
    for api in (owner, colleague, worker):
        assert _masked(_values(api, task_id))
    # and a pattern filter cannot probe the hidden value
    probe = colleague(
        "tasks.get_all",
        id=[task_id],
        _all_={"fields": ["hyperparams.General.db_password.value"], "pattern": "^s3cret"},
    )
    assert probe["tasks"] == []
    # (our REST API agrees)
    ours = compat_server.api(colleague_key.strip().splitlines()[-1]).get(
        f"{compat_server.url}/api/v1/tasks/{task_id}/"
    )
    assert ours.json()["hyperparameters"]["General"]["db_password"]["value"] == MASK
    # the task's own key always reads the real values
    assert not _masked(_values(own, task_id))

    # when a worker key pulls it from its queue (an agent or runner about to run it)
    queue = worker("queues.create", name=f"masking-{uuid.uuid4().hex[:6]}")["id"]
    owner("tasks.enqueue", task=task_id, queue=queue)
    pulled = worker("queues.get_next_task", queue=queue)
    assert pulled["entry"]["task"] == task_id
    # then that key reads the real values while the task runs, and nobody else does
    assert not _masked(_values(worker, task_id))
    assert _masked(_values(colleague, task_id))
    assert _masked(_values(owner, task_id))

    # a masked document written back whole keeps the stored values
    doc = colleague("tasks.get_by_id", task=task_id)["task"]
    colleague(
        "tasks.edit",
        task=task_id,
        force=True,
        hyperparams=doc["hyperparams"],
        configuration=doc["configuration"],
    )
    assert not _masked(_values(worker, task_id))

    # once the task has ended, the key that ran it sees masks like everyone else
    worker("tasks.completed", task=task_id)
    assert _masked(_values(worker, task_id))
    assert not _masked(_values(own, task_id))


def test_the_key_that_marks_a_task_started_runs_it(compat_server):
    # given a task a dev machine (or the SDK's LocalClearmlJob) starts with its user key
    owner = Api(compat_server)
    worker = Api(compat_server, compat_server.worker_key)
    project = owner("projects.create", name=f"masking/{uuid.uuid4().hex[:8]}")["id"]
    task_id = owner(
        "tasks.create",
        name="local run",
        project=project,
        type="training",
        hyperparams={"General": {"db_password": _param("General", "db_password", PASSWORD)}},
    )["id"]
    owner("tasks.started", task=task_id)
    # then that key reads its real values while it runs, and a worker key does not
    read = owner("tasks.get_by_id", task=task_id)["task"]["hyperparams"]["General"]
    assert read["db_password"]["value"] == PASSWORD
    read = worker("tasks.get_by_id", task=task_id)["task"]["hyperparams"]["General"]
    assert read["db_password"]["value"] == MASK
