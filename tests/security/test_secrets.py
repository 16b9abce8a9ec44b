"""R38: secrets in hyperparameters, configuration, consoles and status messages are masked
wherever the server shows them; only the task's own key reads its values."""

import pytest
from django.test import Client

from pipelines.worker.step_setup import step_env
from webapp.core import keys, secrets, services
from webapp.core.choices import ApiKeyKind
from webapp.core.models import LogLine, Task

AWS = "AKIAABCDEFGHIJKLMNOP"
GHP = "ghp_" + "a1B2c3D4e5" * 4
PASSWORD = "hunter2-very-secret"


@pytest.fixture
def secret_task(world):
    return services.create_task(
        user=world.alice,
        project_name="red/private",
        name="with secrets",
        script={"entry_point": "s.py", "code": "print(1)"},
        hyperparameters={
            "General": {
                "aws_secret_access_key": AWS,
                "db_password": PASSWORD,
                "lr": 0.1,
                "max_tokens": 512,
            }
        },
        configuration={"api_key": "zzz-config-secret", "layers": "[8, 4]"},
        start_running=True,
    )


def _values(hyperparameters) -> dict:
    return {name: entry["value"] for name, entry in hyperparameters["General"].items()}


def test_names_that_mean_credentials_are_sensitive_and_ml_names_are_not():
    for name in (
        "db_password",
        "aws_secret_access_key",
        "hf_token",
        "apiKey",
        "PRIVATE_KEY",
        "github-token",
        "client_secret",
        "passwd",
    ):
        assert secrets.is_sensitive(name), name
    for name in ("max_tokens", "tokenizer", "lr", "keyboard", "n_keys", "secretary_count"):
        assert not secrets.is_sensitive(name), name


@pytest.mark.django_db
def test_api_reads_mask_sensitive_parameters_except_for_the_tasks_own_key(world, secret_task):
    alice = world.client("alice")
    read = alice.get(f"/api/v1/tasks/{secret_task.id}/").json()
    assert _values(read["hyperparameters"]) == {
        "aws_secret_access_key": "********",
        "db_password": "********",
        "lr": "0.1",
        "max_tokens": "512",
    }
    assert read["configuration"]["api_key"]["value"] == "********"
    assert read["configuration"]["layers"]["value"] == "[8, 4]"
    params = alice.get(f"/api/v1/tasks/{secret_task.id}/hyperparameters/").json()
    config = alice.get(f"/api/v1/tasks/{secret_task.id}/configuration/").json()
    text = str([read, params, config, alice.get("/api/v1/tasks/?archived=1").json()])
    for value in (AWS, PASSWORD, "zzz-config-secret"):
        assert value not in text
    # the step itself (its task key) needs the values
    _, task_key = keys.create_api_key(world.alice, kind=ApiKeyKind.TASK, task=secret_task)
    step = world.client()
    step.credentials(HTTP_AUTHORIZATION=f"Bearer {task_key}")
    own = step.get(f"/api/v1/tasks/{secret_task.id}/").json()
    assert _values(own["hyperparameters"])["db_password"] == PASSWORD
    assert own["configuration"]["api_key"]["value"] == "zzz-config-secret"


@pytest.mark.django_db
def test_a_mask_sent_back_keeps_the_secret_and_a_clone_keeps_it_server_side(world, secret_task):
    alice = world.client("alice")
    services.make_draft(secret_task)
    shown = alice.get(f"/api/v1/tasks/{secret_task.id}/hyperparameters/").json()
    shown["General"]["lr"]["value"] = "0.2"
    saved = alice.put(
        f"/api/v1/tasks/{secret_task.id}/hyperparameters/",
        {"values": shown, "replace": True},
        format="json",
    )
    assert saved.status_code == 200
    secret_task.refresh_from_db()
    stored = _values(secret_task.hyperparameters)
    assert (stored["db_password"], stored["lr"]) == (PASSWORD, "0.2")
    # a new value replaces it
    alice.put(
        f"/api/v1/tasks/{secret_task.id}/hyperparameters/",
        {"values": {"General": {"db_password": "rotated"}}},
        format="json",
    )
    secret_task.refresh_from_db()
    assert _values(secret_task.hyperparameters)["db_password"] == "rotated"
    # a clone carries the value on the server, and shows only the mask
    clone = alice.post(f"/api/v1/tasks/{secret_task.id}/clone/", {}, format="json").json()
    assert _values(clone["hyperparameters"])["db_password"] == "********"
    assert _values(Task.objects.get(pk=clone["id"]).hyperparameters)["db_password"] == "rotated"


@pytest.mark.django_db
def test_errors_never_echo_parameter_values(world, secret_task):
    services.make_draft(secret_task)
    response = world.client("alice").put(
        f"/api/v1/tasks/{secret_task.id}/hyperparameters/",
        {"values": {"General": {"db_password": [PASSWORD]}}},
        format="json",
    )
    assert response.status_code == 400
    assert PASSWORD not in response.content.decode()


@pytest.mark.django_db
def test_console_lines_are_redacted_when_they_arrive(world, secret_task):
    lines = [
        f"AWS_ACCESS_KEY_ID={AWS}",
        f"token {GHP} in the middle",
        "slack xoxb-1234567890-abcdefghij",
        f"connecting with password {PASSWORD}",
        "DATABASE_PASSWORD=s3cr3t-value",
        '{"api_key": "abc123456"}',
        "epoch 3 max_tokens=512 loss=0.1",
    ]
    response = world.client("alice").post(
        f"/api/v1/tasks/{secret_task.id}/console/",
        {"lines": [{"text": line} for line in lines]},
        format="json",
    )
    assert response.status_code == 200
    stored = list(LogLine.objects.filter(task=secret_task).values_list("text", flat=True))
    assert stored == [
        "AWS_ACCESS_KEY_ID=***",
        "token *** in the middle",
        "slack ***",
        "connecting with password ***",
        "DATABASE_PASSWORD=***",
        '{"api_key": "***"}',
        "epoch 3 max_tokens=512 loss=0.1",
    ]
    # the worker's stderr tail in the status message is masked on read
    services.mark_failed(secret_task, "exit code 1", f"boom {AWS} {PASSWORD}")
    read = world.client("alice").get(f"/api/v1/tasks/{secret_task.id}/").json()
    assert read["status_message"] == "boom *** ***"


@pytest.mark.django_db
def test_dashboard_shows_masks_and_saving_the_form_keeps_the_secret(world, secret_task):
    services.make_draft(secret_task)
    browser = Client()
    browser.login(username="alice", password="pw-alice")
    page = browser.get(f"/tasks/{secret_task.id}/configuration/").content.decode()
    assert "********" in page
    assert PASSWORD not in page and AWS not in page and "zzz-config-secret" not in page
    # the form posts every row back as shown
    rows = sorted(secret_task.hyperparameters["General"].items())
    form = {"rows": str(len(rows))}
    for index, (name, entry) in enumerate(rows):
        shown = "********" if secrets.is_sensitive(name) else entry["value"]
        form.update(
            {
                f"section-{index}": "General",
                f"name-{index}": name,
                f"value-{index}": shown,
                f"type-{index}": entry["type"],
            }
        )
    assert browser.post(f"/tasks/{secret_task.id}/hyperparameters/", form).status_code == 302
    secret_task.refresh_from_db()
    assert _values(secret_task.hyperparameters)["db_password"] == PASSWORD
    services.mark_failed(secret_task, "exit code 1", f"Traceback ... {AWS}")
    info = browser.get(f"/tasks/{secret_task.id}/info/").content.decode()
    assert AWS not in info


@pytest.mark.django_db
def test_pipeline_overrides_are_masked_in_the_api_and_the_run_page(world):
    base = world.objects["base"]
    controller = services.create_task(
        user=world.alice, project_name="red/private", name="ctl2", task_type="controller"
    )
    response = world.client("alice").post(
        "/api/v1/pipelines/",
        {
            "controller": controller.id,
            "steps": [
                {
                    "name": "s",
                    "base_task_id": base.id,
                    "parameter_override": {"General/db_password": PASSWORD, "General/lr": "0.5"},
                }
            ],
            "driver": "client",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["steps"][0]["parameter_override"] == {
        "General/db_password": "********",
        "General/lr": "0.5",
    }
    browser = Client()
    browser.login(username="alice", password="pw-alice")
    page = browser.get(f"/pipelines/runs/{body['id']}/").content.decode()
    assert PASSWORD not in page
    # the engine still has the value
    from webapp.core.models import PipelineRun

    stored = PipelineRun.objects.get(pk=body["id"]).steps[0]["parameter_override"]
    assert stored["General/db_password"] == PASSWORD


def test_the_step_environment_carries_no_server_or_worker_secrets(monkeypatch):
    for name in ("DATABASE_URL", "SECRET_KEY", "CELERY_BROKER_URL", "PIPELINES_API_KEY"):
        monkeypatch.setenv(name, "server-secret")
    env = step_env("http://127.0.0.1:1", "pk_task_key", "t" * 32)
    assert "server-secret" not in env.values()
    assert env["PIPELINES_API_KEY"] == "pk_task_key"


PIPELINE_DOCUMENT = {
    "stage_data": {"base_task_id": "a" * 32, "parameters": {"General/dataset_url": "s3://d"}},
    "stage_train": {
        "base_task_id": "b" * 32,
        "parameters": {"General/api_key": "zzz-step-key", "General/epochs": 3},
        "configurations": {"hub": {"hf_token": "hf_zzzz-secret", "repo": "org/model"}},
    },
}
CONFIG_FILE = "lr: 0.1\ndb_password: hunter-in-a-file\nmax_tokens: 512\n"


@pytest.mark.django_db
def test_secrets_inside_a_configuration_document_are_masked_and_saving_it_back_keeps_them(world):
    import json

    controller = services.create_task(
        user=world.alice,
        project_name="red/private",
        name="a controller with its pipeline in a configuration",
        script={"entry_point": "c.py", "code": "print(1)"},
        configuration={
            # as ClearML's PipelineController stores its steps: one JSON entry
            "Pipeline": json.dumps(PIPELINE_DOCUMENT, indent=2),
            "training.yaml": CONFIG_FILE,
        },
    )
    alice = world.client("alice")
    read = alice.get(f"/api/v1/tasks/{controller.id}/").json()["configuration"]
    shown = json.loads(read["Pipeline"]["value"])
    assert shown["stage_train"]["parameters"] == {
        "General/api_key": "********",
        "General/epochs": 3,
    }
    assert shown["stage_train"]["configurations"]["hub"] == {
        "hf_token": "********",
        "repo": "org/model",
    }
    assert shown["stage_data"] == PIPELINE_DOCUMENT["stage_data"]
    assert read["training.yaml"]["value"] == "lr: 0.1\ndb_password: ***\nmax_tokens: 512\n"
    text = str(alice.get(f"/api/v1/tasks/{controller.id}/configuration/").json())
    browser = Client()
    browser.login(username="alice", password="pw-alice")
    text += browser.get(f"/tasks/{controller.id}/configuration/").content.decode()
    for value in ("zzz-step-key", "hf_zzzz-secret", "hunter-in-a-file"):
        assert value not in text
    # saved back whole as it was read, the documents keep their stored values
    saved = alice.put(
        f"/api/v1/tasks/{controller.id}/configuration/",
        {"values": alice.get(f"/api/v1/tasks/{controller.id}/configuration/").json()},
        format="json",
    )
    assert saved.status_code == 200, saved.content
    controller.refresh_from_db()
    assert json.loads(controller.configuration["Pipeline"]["value"]) == PIPELINE_DOCUMENT
    assert controller.configuration["training.yaml"]["value"] == CONFIG_FILE
    # an edited document is saved as given
    edited = json.loads(read["Pipeline"]["value"])
    edited["stage_train"]["parameters"]["General/api_key"] = "rotated-key"
    alice.put(
        f"/api/v1/tasks/{controller.id}/configuration/",
        {"values": {"Pipeline": {"value": json.dumps(edited)}}},
        format="json",
    )
    controller.refresh_from_db()
    stored = json.loads(controller.configuration["Pipeline"]["value"])
    assert stored["stage_train"]["parameters"]["General/api_key"] == "rotated-key"
    # while the secret it still showed masked keeps its stored value
    assert stored["stage_train"]["configurations"]["hub"]["hf_token"] == "hf_zzzz-secret"
    # and the controller's own key reads the real values
    _, task_key = keys.create_api_key(world.alice, kind=ApiKeyKind.TASK, task=controller)
    own = world.client()
    own.credentials(HTTP_AUTHORIZATION=f"Bearer {task_key}")
    mine = own.get(f"/api/v1/tasks/{controller.id}/").json()["configuration"]
    assert "rotated-key" in mine["Pipeline"]["value"]
    assert mine["training.yaml"]["value"] == CONFIG_FILE
