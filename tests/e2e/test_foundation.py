"""The foundation through its real path: a server process and SDK scripts in other processes."""

import re
from pathlib import Path

import pytest
import requests

from tests.support import run_script

pytestmark = pytest.mark.e2e
SCRIPTS = Path(__file__).parent / "scripts"


def _task_id(output: str) -> str:
    return re.search(r"TASK_ID ([0-9a-f]{32})", output).group(1)


def test_execute_remotely_registers_a_draft_base_task_with_script_and_typed_parameters(server):
    # given a step script run on a dev machine
    script = SCRIPTS / "register_base.py"
    # when it runs
    result = run_script(script, server.sdk_env())
    # then it exits 0 at execute_remotely() and leaves a draft holding its script and params
    assert result.returncode == 0, result.stderr
    task = server.api().get(f"{server.url}/api/v1/tasks/{_task_id(result.stdout)}/").json()
    assert task["status"] == "created"
    assert task["script"]["code"] == script.read_text()
    assert task["script"]["entry_point"] == "register_base.py"
    assert any(r.startswith("requests==") for r in task["script"]["requirements"])
    general = task["hyperparameters"]["General"]
    assert general["test_size"] == {"value": "0.2", "type": "float", "description": ""}
    assert general["epochs"]["type"] == "int"
    assert general["verbose"] == {"value": "True", "type": "bool", "description": ""}
    assert general["layers"] == {"value": "[8, 4]", "type": "list", "description": ""}


def test_artifacts_round_trip_between_processes_and_pickles_need_an_opt_in(server, tmp_path):
    blob = tmp_path / "blob.bin"
    upload = run_script(SCRIPTS / "upload_artifacts.py", server.sdk_env(), args=[str(blob)])
    assert upload.returncode == 0, upload.stderr
    task_id = _task_id(upload.stdout)

    read = run_script(SCRIPTS / "read_artifacts.py", server.sdk_env(), args=[str(blob)])
    assert read.returncode == 0, read.stderr
    assert "ALL EQUAL" in read.stdout

    rows = server.api().get(f"{server.url}/api/v1/tasks/{task_id}/artifacts/").json()
    kinds = {row["name"]: (row["kind"], row["state"]) for row in rows}
    assert kinds["array"] == ("numpy", "ready")
    assert kinds["frame"] == ("pandas", "ready")
    assert kinds["config"] == ("json", "ready")
    assert kinds["blob"] == ("file", "ready")
    assert kinds["obj"] == ("pickle", "ready")
    # every stored byte is below the artifact root, whatever the artifact was called
    root = (server.data_dir / "artifacts").resolve()
    server_files = [p for p in server.data_dir.rglob("*") if "sdk-cache" not in p.parts]
    stored = [p for p in server_files if p.is_file() and "escape" in p.name]
    assert stored and all(root in p.resolve().parents for p in stored)
    assert not (server.data_dir.parent / "escape").exists()
    # the run that uploaded them ended as completed when its script exited
    task = server.api().get(f"{server.url}/api/v1/tasks/{task_id}/").json()
    assert task["status"] == "completed"


def _api_paths(server) -> list[str]:
    schema = server.api().get(f"{server.url}/api/schema/?format=json").json()
    return sorted(schema["paths"])


def test_every_endpoint_refuses_missing_or_bad_credentials(server):
    paths = _api_paths(server)
    assert len(paths) > 20
    fake_id = "0" * 32
    for path in paths:
        url = server.url + re.sub(r"\{[^}]+\}", fake_id, path)
        for headers in ({}, {"Authorization": "Bearer pk_nothing_wrong"}, {"Authorization": "x"}):
            for method in ("get", "post"):
                response = requests.request(method, url, headers=headers, json={}, timeout=10)
                # 429: the bad key's address is past its failed-keys limit (R49)
                assert response.status_code in (401, 405, 429), (
                    method,
                    path,
                    response.status_code,
                )
                if response.status_code in (401, 429):
                    error = response.json()["error"]
                    assert error in ("not_authenticated", "authentication_failed", "throttled")
    assert requests.get(f"{server.url}/api/schema/", timeout=10).status_code == 401
    assert requests.get(f"{server.url}/files/{fake_id}/x", timeout=10).status_code == 401


def test_foreign_objects_are_not_found_and_revoked_keys_stop_working(server):
    owner = server.api()
    task = owner.post(
        f"{server.url}/api/v1/tasks/", json={"project_name": "private", "name": "mine"}
    ).json()
    key = server.manage("shell", "-c", _NEW_USER_KEY).strip().splitlines()[-1]
    stranger = server.api(key)
    assert stranger.get(f"{server.url}/api/v1/tasks/{task['id']}/").status_code == 404
    assert stranger.post(f"{server.url}/api/v1/tasks/{task['id']}/enqueue/").status_code == 404
    listed = stranger.get(f"{server.url}/api/v1/tasks/").json()["results"]
    assert task["id"] not in {row["id"] for row in listed}
    assert stranger.get(f"{server.url}/api/v1/me/").json()["username"] == "stranger"
    prefix = key.split("_")[1]
    assert stranger.delete(f"{server.url}/api/v1/keys/?prefix={prefix}").status_code == 204
    assert stranger.get(f"{server.url}/api/v1/me/").status_code == 401


_NEW_USER_KEY = """
from django.contrib.auth import get_user_model
from webapp.core.keys import create_api_key
user, _ = get_user_model().objects.get_or_create(username="stranger")
print(create_api_key(user)[1])
"""


def test_malformed_bodies_get_400_with_a_message_never_500(server):
    api = server.api()
    bad = [
        ("post", "/api/v1/tasks/", "{not json"),
        ("post", "/api/v1/tasks/", "[]"),
        ("post", "/api/v1/tasks/", '{"project_name": "", "name": "x"}'),
        ("post", "/api/v1/tasks/", '{"project_name": "p", "name": "x", "type": "nope"}'),
        ("post", "/api/v1/tasks/", '{"project_name": "p", "name": "x", "hyperparameters": 3}'),
        ("post", "/api/v1/projects/", '{"name": ["x"]}'),
    ]
    for method, path, body in bad:
        response = api.request(
            method, server.url + path, data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["detail"]


def test_illegal_transition_is_409_naming_the_current_state(server):
    api = server.api()
    task = api.post(f"{server.url}/api/v1/tasks/", json={"project_name": "p", "name": "t"}).json()
    response = api.post(f"{server.url}/api/v1/tasks/{task['id']}/publish/")
    assert response.status_code == 409
    assert response.json()["status"] == "created"
    assert "created" in response.json()["detail"]


def test_interrupted_upload_stays_pending_with_no_bytes_stored(server):
    api = server.api()
    task = api.post(
        f"{server.url}/api/v1/tasks/",
        json={"project_name": "p", "name": "uploader", "start_running": True},
    ).json()
    declared = api.post(
        f"{server.url}/api/v1/tasks/{task['id']}/artifacts/",
        json={"name": "big", "kind": "file", "filename": "big.bin", "size": 10, "sha256": "a" * 64},
    ).json()
    # the wrong bytes arrive: refused, nothing at the final key, still pending
    response = api.put(
        f"{server.url}/api/v1/artifacts/{declared['id']}/upload/",
        files={"file": ("big.bin", b"0123456789")},
    )
    assert response.status_code == 400
    artifact = api.get(f"{server.url}/api/v1/artifacts/{declared['id']}/").json()
    assert artifact["state"] == "pending"
    assert api.get(f"{server.url}/api/v1/artifacts/{declared['id']}/download/").status_code == 409
    assert not list((server.data_dir / "artifacts").rglob(f"*{declared['id']}*/*"))
