"""Concurrent writers while the database is held by someone else (reliability.md R21)."""

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support import REPO, wait_until

pytestmark = pytest.mark.e2e
SCRIPTS = Path(__file__).parent / "scripts"
WRITERS = 8


def _hold_the_database(server, seconds: float) -> None:
    """Take the write lock another process would have to wait for, for `seconds`."""
    url = server.env["DATABASE_URL"]
    if url.startswith("sqlite"):
        connection = sqlite3.connect(urlsplit(url).path, timeout=30, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        connection.execute("ROLLBACK")
        connection.close()
        return
    import psycopg

    with psycopg.connect(url) as connection:
        # Writers of console lines and scalars queue behind this; readers do not.
        connection.execute("LOCK TABLE core_logline, core_scalar IN EXCLUSIVE MODE")
        time.sleep(seconds)
        connection.rollback()


def test_concurrent_writers_through_a_held_lock_get_no_5xx_and_lose_nothing(server):
    api = server.api()
    worker = "lock-test-worker"
    tasks = []
    for index in range(WRITERS):
        task = api.post(
            f"{server.url}/api/v1/tasks/", json={"project_name": "e2e-faults", "name": f"w{index}"}
        ).json()
        api.post(f"{server.url}/api/v1/tasks/{task['id']}/enqueue/", json={"queue": "locked"})
        claimed = server.api(server.worker_key).post(
            f"{server.url}/api/v1/tasks/{task['id']}/claim/", json={"attempt": 1, "worker": worker}
        )
        assert claimed.status_code == 200, claimed.text
        tasks.append(task["id"])
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                str(SCRIPTS / "fault_writer.py"),
                server.url,
                server.api_key,
                server.worker_key,
                worker,
                task_id,
                "6",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for task_id in tasks
    ]
    try:
        # once every writer is writing, someone else holds the database for 1.5 s
        wait_until(
            lambda: all(
                api.get(f"{server.url}/api/v1/tasks/{t}/console/", params={"limit": 1}).json()
                for t in tasks
            ),
            timeout=30,
            message="every writer to have written",
        )
        _hold_the_database(server, 1.5)
        assert all(process.poll() is None for process in writers), "writers ended too soon"
        results = []
        for process in writers:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
            results.append(json.loads(out))
    finally:
        for process in writers:
            if process.poll() is None:
                process.kill()
    # then no request failed: writers waited for the lock instead
    statuses = {}
    for result in results:
        for code, count in result["statuses"].items():
            statuses[int(code)] = statuses.get(int(code), 0) + count
    assert set(statuses) == {200}, statuses
    # and everything acknowledged is stored, once
    for task_id, result in zip(tasks, results, strict=True):
        console = api.get(
            f"{server.url}/api/v1/tasks/{task_id}/console/", params={"limit": 10_000}
        ).json()
        assert len(console) == result["lines"] == len({line["text"] for line in console})
        scalars = api.get(f"{server.url}/api/v1/tasks/{task_id}/scalars/").json()
        assert len(scalars["t"]["s"]["x"]) == result["scalars"]
        assert api.get(f"{server.url}/api/v1/tasks/{task_id}/").json()["status"] == "in_progress"
