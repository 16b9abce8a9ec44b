"""R50, R51: an install's files are private to its owner, whatever the umask it started with.

A world-readable db.sqlite3 gave away session keys (an admin session); the data dir also
holds the install's secret, credentials, the broker's files and the logs.
"""

import hashlib
import os
import re
import signal
import stat
import sys
from pathlib import Path

import requests

from tests.support import free_port, start_process, start_server, up_env


def _loose(root: Path) -> list[str]:
    """Every file or folder under `root` (and root) that group or others may access."""
    found = []
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            continue
        if info.st_mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {stat.filemode(info.st_mode)}")
    return found


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _leave_readable_files(data_dir: Path) -> list[Path]:
    """What an older version (umask 022) left behind: readable by every user."""
    old_log = data_dir / "logs" / "server.log"
    old_artifact = data_dir / "artifacts" / "tasks" / "old" / "model.bin"
    database = data_dir / "db.sqlite3"
    for folder in (data_dir, old_log.parent, old_artifact.parent):
        folder.mkdir(parents=True, exist_ok=True)
    old_log.write_text("an old line\n")
    old_artifact.write_bytes(b"weights")
    database.touch()  # an empty file is an empty SQLite database
    for path in (old_log, old_artifact, database):
        os.chmod(path, 0o644)
    for folder in (data_dir, old_log.parent, old_artifact.parent, old_artifact.parent.parent):
        os.chmod(folder, 0o755)  # noqa: S103 - what the test is about
    return [old_log, old_artifact, database]


def _upload_artifact(base: str, key: str) -> None:
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"
    task = api.post(
        f"{base}/tasks/", json={"project_name": "private", "name": "files", "start_running": True}
    ).json()
    data = b"private bytes\n" * 100
    declared = api.post(
        f"{base}/tasks/{task['id']}/artifacts/",
        json={
            "name": "blob",
            "kind": "file",
            "filename": "blob.bin",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    ).json()
    answer = api.put(
        f"{base}/artifacts/{declared['id']}/content/",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert answer.status_code in (200, 201), answer.text


def test_pipelines_up_keeps_every_file_of_its_data_dir_private_whatever_the_umask(tmp_path):
    home, data_dir = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    old_files = _leave_readable_files(data_dir)
    # the file under test: SQLite in the data dir, whatever the lane's database
    env = up_env(home, data_dir, f"sqlite:///{data_dir / 'db.sqlite3'}")
    port = free_port()
    up = start_process(
        "up",
        [
            "sh",
            "-c",
            f'umask 022 && exec "{sys.executable}" -m pipelines.launcher.cli up --port {port}',
        ],
        env,
        tmp_path / "up.log",
        cwd=tmp_path,
    )
    try:
        up.wait_for_log("Press Ctrl-C to stop.", timeout=120)
        key = re.search(r"API key:\s+(pk_\S+)", up.log()).group(1)
        _upload_artifact(f"http://127.0.0.1:{port}/api/v1", key)

        assert _loose(data_dir) == []
        assert _mode(data_dir) == 0o700
        for name in (
            "db.sqlite3",
            "db.sqlite3-wal",
            "db.sqlite3-shm",
            "secret_key",
            "credentials.json",
            "redis/redis.conf",
            "redis/appendonly.aof",
            "logs/server.log",
            "logs/server-worker.log",
            "logs/worker-default.log",
            "logs/redis.log",
        ):
            assert _mode(data_dir / name) == 0o600, name
        for folder in ("logs", "redis", "artifacts"):
            assert _mode(data_dir / folder) == 0o700, folder
        assert stat.S_ISSOCK((data_dir / "redis.sock").lstat().st_mode)
        stored = [p for p in (data_dir / "artifacts").rglob("blob.bin")]
        assert stored and all(_mode(p) == 0o600 for p in stored)
        for path in old_files:
            assert _mode(path) == 0o600, path
        assert _mode(home / ".config" / "pipelines" / "config.json") == 0o600

        up.signal_group(signal.SIGINT)
        assert up.process.wait(60) == 0
        assert _loose(data_dir) == []
    finally:
        up.stop()


def test_a_server_started_on_its_own_with_umask_022_makes_and_leaves_nothing_readable(
    tmp_path,
):
    data_dir = tmp_path / "data"
    old_files = _leave_readable_files(data_dir)
    previous = os.umask(0o022)
    try:
        server = start_server(data_dir, DATABASE_URL=f"sqlite:///{data_dir / 'db.sqlite3'}")
    finally:
        os.umask(previous)
    try:
        _upload_artifact(f"{server.url}/api/v1", server.api_key)
        # server.log (the test's capture of the server's output) included: made before it started
        assert _loose(data_dir) == []
        for path in old_files:
            assert _mode(path) == 0o600, path
        assert _mode(data_dir / "db.sqlite3-wal") == 0o600
    finally:
        server.stop()
        server.drop_database()
