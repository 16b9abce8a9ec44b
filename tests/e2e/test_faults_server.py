"""The server or its database goes away under a running pipeline (reliability.md R18, R22).

The module's cluster uses 10 s leases (on the server and on the workers), so an outage of a
few seconds is shorter than a lease: nothing may be reaped or fenced because of it. On the
PostgreSQL lane the server and the server worker reach the database through a TcpProxy,
which the test cuts; the machine's PostgreSQL itself is never touched.
"""

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support import fresh_database_url, pid_alive, start_cluster, wait_until
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
LEASE = "10"
POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


@pytest.fixture(scope="module")
def database_proxy(tmp_path_factory):
    """On PostgreSQL: a fresh database reached through a proxy the tests can cut."""
    if not POSTGRES:
        yield None, None
        return
    url, drop = fresh_database_url(tmp_path_factory.mktemp("pg"))
    parts = urlsplit(url)
    proxy = TcpProxy(parts.port or 5432)  # PostgreSQL on 127.0.0.1, as CI runs it
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    proxied = urlunsplit(parts._replace(netloc=netloc))
    yield proxy, (proxied, drop)
    proxy.cut()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, database_proxy):
    _, database = database_proxy
    running = start_cluster(
        tmp_path_factory.mktemp("server-faults"), database=database, TASK_LEASE_SECONDS=LEASE
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def queue(cluster) -> str:
    name = cluster.queue("steps")
    cluster.start_worker(name, PIPELINES_LEASE_SECONDS=LEASE)
    return name


# created after each test (conftest.release_steps), so no step is left waiting
HANDSHAKE_FILES = ("go", "go-a", "go-b", "go-c")


# Wider than every server process's thread pool, so each thread serves some of it.
BURST = 64


def _burst(cluster, url: str) -> list[int]:
    """Status codes of BURST requests sent at once, each on a connection of its own."""

    def one(_):
        with cluster.server.api() as session:
            return session.get(url, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        return list(pool.map(one, range(BURST)))


def _runs(folder: Path) -> list[str]:
    path = folder / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


def _run(cluster, controller_id: str) -> dict:
    runs = cluster.get("pipelines/", page_size=1000)["results"]
    run = next(r for r in runs if r["controller"] == controller_id)
    return cluster.get(f"pipelines/{run['id']}/")


def _node_status(cluster, controller_id: str, name: str) -> str:
    return next(n for n in _run(cluster, controller_id)["nodes"] if n["name"] == name)["status"]


def test_a_server_killed_mid_pipeline_loses_nothing_and_relaunches_nothing(
    cluster, queue, base, tmp_path
):
    def step(name, mode, parents=()):
        values = {"mode": mode, "handshake_dir": str(tmp_path), "go_file": f"go-{name}"}
        return {
            "name": name,
            "base_task_id": base,
            "parents": list(parents),
            "parameter_override": {f"General/{k}": v for k, v in values.items()},
        }

    controller = cluster.post(
        "tasks/", {"project_name": "e2e-faults", "name": "restart", "type": "controller"}
    )
    steps = [step("a", "wait"), step("b", "wait", ["a"]), step("c", "record", ["b"])]
    cluster.post(
        "pipelines/", {"controller": controller["id"], "steps": steps, "default_queue": queue}
    )
    wait_until(lambda: _node_status(cluster, controller["id"], "a") == "running", timeout=30)
    (tmp_path / "go-a").touch()
    wait_until(lambda: _node_status(cluster, controller["id"], "b") == "running", timeout=30)
    wait_until(lambda: len(_runs(tmp_path)) == 2, timeout=30)
    step_b_pid = int(_runs(tmp_path)[1].split("pid=")[1])
    # when the server dies (SIGKILL) while step b runs, and step b ends during the outage
    cluster.server.process.kill()
    cluster.server.process.wait(10)
    (tmp_path / "go-b").touch()
    wait_until(lambda: not pid_alive(step_b_pid), timeout=10, message="step b to end")
    time.sleep(1)  # the outage goes on a little after the step's end: its report is owed
    cluster.server.start()
    # then the worker delivers b's console and end, the engine launches c, the run completes
    wait_until(lambda: _run(cluster, controller["id"])["status"] != "running", timeout=45)
    run = _run(cluster, controller["id"])
    assert run["status"] == "completed", run
    nodes = {node["name"]: node for node in run["nodes"]}
    assert {n: (nodes[n]["status"], nodes[n]["attempts"]) for n in nodes} == {
        n: ("completed", 1) for n in "abc"
    }
    # no step ran twice and none was reaped: b kept its lease through the outage
    assert sorted(line.split()[0] for line in _runs(tmp_path)) == sorted(
        nodes[n]["task"] for n in "abc"
    )
    task_b = cluster.task(nodes["b"]["task"])
    assert task_b["attempt"] == 1 and task_b["status_reason"] == "exit code 0"
    # and b's console is whole: every line once, in order, with no gap in its numbering
    console = cluster.console(task_b["id"])
    assert [line["seq"] for line in console] == list(range(len(console)))
    texts = [line["text"] for line in console]
    assert len(texts) == len(set(texts))
    assert "STEP DONE" in texts and any("attempt 1 ended: completed" in t for t in texts)


@pytest.mark.skipif(not POSTGRES, reason="cuts a PostgreSQL connection (DATABASE_URL)")
def test_a_database_outage_answers_503_and_the_running_step_survives_it(
    cluster, queue, base, tmp_path, database_proxy
):
    proxy, _ = database_proxy
    task_id = cluster.launch(base, queue, {"mode": "wait", "handshake_dir": tmp_path})
    cluster.wait_for_status(task_id, "in_progress", timeout=30)
    wait_until(lambda: _runs(tmp_path), timeout=30)
    step_pid = int(_runs(tmp_path)[0].split("pid=")[1])
    url = f"{cluster.server.url}/api/v1/tasks/{task_id}/"
    # every server thread holds a database connection (bursts wider than the thread pools)
    assert _burst(cluster, url) == [200] * BURST
    # when the database cannot be reached for about three seconds
    proxy.cut()
    try:
        ends = time.monotonic() + 3
        answers = []
        while time.monotonic() < ends:
            answers.append(cluster.server.api().get(url, timeout=10))
            time.sleep(0.2)
    finally:
        proxy.restore()
    # then the API said so with 503 and a JSON body, never a 500 traceback
    assert answers and {r.status_code for r in answers} == {503}
    assert all(r.json()["error"] == "database_unavailable" for r in answers)
    assert all(r.headers.get("Retry-After") for r in answers)
    # and the step is still running: the worker's heartbeats got through again in time
    assert pid_alive(step_pid)
    wait_until(lambda: cluster.task(task_id)["status"] == "in_progress", timeout=10)
    # and once it is back, every thread answers: none replies from the dead connection it
    # kept through the outage
    assert _burst(cluster, url) == [200] * BURST
    (tmp_path / "go").touch()
    task = cluster.wait_for_status(task_id, "completed", "failed")
    assert task["status"] == "completed" and task["attempt"] == 1
    assert len(_runs(tmp_path)) == 1


@pytest.mark.skipif(not POSTGRES, reason="ends PostgreSQL backends (DATABASE_URL)")
def test_after_the_database_drops_every_connection_each_server_thread_answers_its_next_request(
    cluster, queue, base, tmp_path, database_proxy
):
    import psycopg

    _, (database_url, _) = database_proxy
    task_id = cluster.launch(base, queue, {"mode": "wait", "handshake_dir": tmp_path})
    cluster.wait_for_status(task_id, "in_progress", timeout=30)
    url = f"{cluster.server.url}/api/v1/tasks/{task_id}/"
    assert _burst(cluster, url) == [200] * BURST
    # when every connection to the database is ended at once, as a PostgreSQL restart does
    with psycopg.connect(database_url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended"
        ).fetchone()[0]
    assert ended >= 2
    # then no thread answers from the dead connection it kept: each opens a new one
    assert _burst(cluster, url) == [200] * BURST
    # and the step it ran goes on to complete
    (tmp_path / "go").touch()
    task = cluster.wait_for_status(task_id, "completed", "failed")
    assert task["status"] == "completed" and task["attempt"] == 1
