"""R56-R58: the ClearML file server (/clearml-files/) on a live server. Every object belongs
to the task its path names (the SDK's `<project>/<task name>.<task id>/...` layout); reads
need that task's visibility, writes and deletes the policy's task.outputs on it, and no
user-supplied path reaches the filesystem."""

import hashlib
import os
from pathlib import Path

import pytest
import requests

from tests.security.doors import changed_tables, db_state, sdk_path

pytestmark = pytest.mark.e2e


def _stored(doors) -> set[Path]:
    root = doors.server.data_dir / "artifacts"
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _alice_file(doors, data: bytes = b"alice's bytes", name: str = "data.bin") -> tuple:
    """A team-red task and a file of it, uploaded by alice the way the SDK names it."""
    task = doors.new_task(name="file owner")
    path = sdk_path(doors.red_project_name, "file owner", task, f"artifacts/data/{name}")
    answer = doors.upload("user_a", path, data)
    assert answer.status_code == 200, answer.text
    return task, path


def test_another_team_cannot_read_overwrite_or_delete_a_file(doors):
    task, path = _alice_file(doors)
    before = db_state(doors.server)
    files_before = {p: p.read_bytes() for p in _stored(doors)}
    # given bob of team blue: the file is not there for him, as if it did not exist
    assert doors.file("user_b", "get", path).status_code == 404
    assert doors.file("user_b", "head", path).status_code == 404
    assert doors.file("task_b", "get", path).status_code == 404
    # and he can neither overwrite it nor delete it, alone or in a batch
    assert doors.upload("user_b", path, b"bob's bytes").status_code == 403
    assert doors.file("user_b", "delete", path).status_code == 404
    many = requests.post(
        f"{doors.files}/delete_many",
        json={"files": [path]},
        headers={"Authorization": f"Bearer {doors.keys['user_b']}"},
        timeout=30,
    )
    assert many.status_code == 200 and many.json()["deleted"] == [], many.text
    # nothing changed: no row, no byte
    assert changed_tables(before, db_state(doors.server)) == []
    assert {p: p.read_bytes() for p in _stored(doors)} == files_before
    assert doors.file("user_a", "get", path).content == b"alice's bytes"


def test_a_task_key_writes_files_only_under_its_own_task_and_its_children(doors):
    own = doors.target_for("task_own")
    key = own["key"]
    sibling = doors.new_task(name="sibling")
    child = doors.ok(
        "task_own",
        "tasks.create",
        as_key=key,
        name="step child",
        project=doors.red_project,
        type="training",
    )
    child_id = child["id"]
    project = doors.red_project_name
    refused = [
        sdk_path(project, "sibling", sibling, "artifacts/x/x.bin"),  # a teammate's task
        f"{project}/no task here/artifacts/x.bin",  # a path naming no task
        "just-a-file.bin",
        sdk_path(project, "shared", doors.shared["task"], "models/m.pkl"),
    ]
    before = db_state(doors.server)
    for path in refused:
        answer = doors.upload("task_own", path, b"step bytes", key=key)
        assert answer.status_code == 403, (path, answer.text)
    assert changed_tables(before, db_state(doors.server)) == []
    # its own task's folder and its children's are its to write
    for task_id, name in ((own["task"], "doors target"), (child_id, "step child")):
        path = sdk_path(project, name, task_id, "artifacts/out/out.bin")
        assert doors.upload("task_own", path, b"step bytes", key=key).status_code == 200
        assert doors.file("user_a", "get", path).content == b"step bytes"
    # (the key of another team's task writes nothing of team red's)
    path = sdk_path(project, "doors target", own["task"], "artifacts/other/o.bin")
    assert doors.upload("task_b", path, b"x").status_code == 403


def test_the_sdk_layout_works_for_the_task_its_team_and_its_runner(doors):
    """An artifact as the SDK stores it: registered, uploaded in the background, read by
    teammates and by the worker key running the task; a path with spaces and a nested,
    hidden pipeline project."""
    task = doors.target_for("runner")["task"]
    project = f"{doors.red_project_name}/.pipelines/my pipeline"
    path = sdk_path(project, "step one", task, "artifacts/dataset/dataset file.pkl")
    uri = f"{doors.files}/{path}"
    doors.ok(
        "runner",
        "tasks.add_or_update_artifacts",
        task=task,
        artifacts=[{"key": "dataset", "type": "pickle", "uri": uri, "content_size": 5}],
    )
    assert doors.upload("runner", path, b"bytes").status_code == 200
    for kind in ("user_a", "staff", "runner", "worker", "task_a"):
        assert doors.file(kind, "get", path).content == b"bytes", kind
    artifact = doors.rest_ok("user_a", "get", f"tasks/{task}/artifacts/")[0]
    assert (artifact["state"], artifact["size"]) == ("ready", 5)
    # a worker key that does not run the task reads it, but changes nothing
    assert doors.upload("worker", path, b"other").status_code == 403
    assert doors.file("worker", "delete", path).status_code == 403
    assert doors.file("user_a", "delete", path).status_code == 200
    assert doors.file("user_a", "get", path).status_code == 404


def test_another_teams_file_never_becomes_your_artifact_or_debug_image(doors):
    """Naming alice's file's URL on bob's own task does not hand bob her bytes."""
    _, path = _alice_file(doors, b"secret weights", "weights.bin")
    blue = doors.ok("user_b", "projects.create", name=f"blue/{doors.unique('thief')}")["id"]
    bobs = doors.new_task("user_b", project=blue, name="bob's task")
    uri = f"{doors.files}/{path}"
    doors.ok(
        "user_b",
        "tasks.add_or_update_artifacts",
        task=bobs,
        artifacts=[{"key": "loot", "type": "custom", "uri": uri, "content_size": 14}],
    )
    image = {
        "type": "training_debug_image",
        "task": bobs,
        "metric": "m",
        "variant": "v",
        "iter": 0,
        "url": uri,
    }
    assert doors.ok("user_b", "events.add_batch", **image)["added"] == 1
    artifact = doors.rest_ok("user_b", "get", f"tasks/{bobs}/artifacts/")[0]
    assert artifact["state"] == "pending"
    assert doors.rest("user_b", "get", f"artifacts/{artifact['id']}/download/").status_code == 409
    assert doors.rest_ok("user_b", "get", f"tasks/{bobs}/samples/") == []


HOSTILE = [
    "../../outside.bin",
    "%2e%2e/%2e%2e/outside.bin",
    "%252e%252e/outside.bin",
    "/etc/passwd",
    "a/../../b.bin",
    "a\\..\\..\\b.bin",
    "a/b\x00.bin",
    "a/%00b.bin",
    "a/\x1bb.bin",
]


def test_hostile_paths_are_refused_and_nothing_lands_outside_the_storage(doors, tmp_path):
    own = doors.target_for("task_own")
    folder = sdk_path(doors.red_project_name, "doors target", own["task"], "artifacts/x")
    outside_before = set(os.listdir(doors.server.data_dir))
    for tail in HOSTILE:
        path = f"{folder}/{tail}"
        answer = doors.upload("task_own", path, b"hostile", key=own["key"])
        # refused, or stored under a key of its own making (a hash) inside the root
        assert answer.status_code in (200, 400, 403), (tail, answer.text)
        if answer.status_code == 200:
            stored = doors.file("task_own", "get", path, key=own["key"])
            assert stored.content == b"hostile", tail
    for tail in ("a/b\x00.bin", "a/%00b.bin", "a/\x1bb.bin", "../../outside.bin"):
        answer = doors.upload("task_own", f"{folder}/{tail}", b"hostile", key=own["key"])
        assert answer.status_code == 400, (tail, answer.text)
    root = doors.server.data_dir / "artifacts"
    for stored in _stored(doors):
        assert stored.resolve().is_relative_to(root.resolve()), stored
    assert set(os.listdir(doors.server.data_dir)) == outside_before


def test_a_symlink_planted_in_the_storage_leads_no_write_or_read_outside(doors, tmp_path):
    own = doors.target_for("task_own")
    path = sdk_path(doors.red_project_name, "doors target", own["task"], "artifacts/l/l.bin")
    assert doors.upload("task_own", path, b"stored", key=own["key"]).status_code == 200
    digest = hashlib.sha256(requests.utils.unquote(path).encode()).hexdigest()
    folder = doors.server.data_dir / "artifacts" / "clearml-files" / digest[:2] / digest
    # given the object's folder replaced by a link to a folder elsewhere holding a plant
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "l.bin").write_bytes(b"planted")
    moved = folder.with_name(digest + ".moved")
    folder.rename(moved)
    folder.symlink_to(elsewhere, target_is_directory=True)
    try:
        # then the plant is not served and nothing is written through the link
        assert doors.file("task_own", "get", path, key=own["key"]).status_code == 404
        answer = doors.upload("task_own", path, b"through the link", key=own["key"])
        assert answer.status_code == 400, answer.text
        assert doors.file("task_own", "delete", path, key=own["key"]).status_code in (200, 400)
        assert sorted(p.name for p in elsewhere.iterdir()) == ["l.bin"]
        assert (elsewhere / "l.bin").read_bytes() == b"planted"
    finally:
        folder.unlink()
        moved.rename(folder)
