"""R100-R102, R104: the web server in several processes, failed keys counted across them, the
server's lease on every worker, and many open connections."""

import hashlib
import os
import signal
import socket
from pathlib import Path

import pytest
import requests

from tests.support import descendants, pid_alive, start_server, wait_until
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e
SCRIPTS = Path(__file__).parent / "scripts"


def _running_task(server) -> str:
    response = server.api().post(
        f"{server.url}/api/v1/tasks/",
        json={"project_name": "capacity", "name": "uploader", "start_running": True},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _upload(server, data: bytes) -> requests.Response:
    """Declare an artifact and PUT its bytes as the raw body (the path webapp/serve.py spools)."""
    declared = server.api().post(
        f"{server.url}/api/v1/tasks/{_running_task(server)}/artifacts/",
        json={
            "name": "blob",
            "kind": "file",
            "filename": "blob.bin",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    )
    assert declared.status_code == 201, declared.text
    return server.api().put(
        f"{server.url}/api/v1/artifacts/{declared.json()['id']}/content/",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def _spooled(server) -> list:
    incoming = server.data_dir / "artifacts" / ".incoming"
    spools = list(incoming.iterdir()) if incoming.is_dir() else []
    return spools + list((server.data_dir / "tmp").iterdir())


def _server_processes(server) -> list[int]:
    return descendants(server.process.pid)


def test_a_killed_server_process_is_replaced_while_the_others_serve_uploads_and_limits(
    tmp_path,
):
    # given a server of three processes (waitress's temp files in a folder of their own)
    (tmp_path / "tmp").mkdir()
    server = start_server(
        tmp_path,
        WEB_PROCESSES="3",
        TMPDIR=str(tmp_path / "tmp"),
        DATA_UPLOAD_MAX_MEMORY_SIZE=str(1024 * 1024),
    )
    try:
        first = wait_until(
            lambda: len(_server_processes(server)) == 3 and _server_processes(server)
        )
        # when one of them is killed
        os.kill(first[0], signal.SIGKILL)
        # then every request meanwhile is answered by the others
        for _ in range(20):
            assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
        # and another process takes its place
        replaced = wait_until(
            lambda: (len(now := _server_processes(server)) == 3 and first[0] not in now and now),
            timeout=30,
            message="a new server process",
        )
        assert set(first[1:]) <= set(replaced)
        # and a raw upload is still spooled straight into storage by whichever serves it
        data = os.urandom(3 * 1024 * 1024 + 7)
        uploaded = _upload(server, data)
        assert uploaded.status_code == 200 and uploaded.json()["state"] == "ready"
        download = server.api().get(
            f"{server.url}/api/v1/artifacts/{uploaded.json()['id']}/download/"
        )
        assert download.content == data
        assert _spooled(server) == []
        # and a JSON body over DATA_UPLOAD_MAX_MEMORY_SIZE is still refused unread
        too_big = server.api().post(
            f"{server.url}/api/v1/projects/",
            data=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert too_big.status_code == 413 and too_big.json()["error"] == "too_large"
    finally:
        children = _server_processes(server)
        server.stop()
    # and stopping the server stops every process of it, so the port is free again
    assert server.process.returncode == 0
    assert not any(pid_alive(pid) for pid in children)
    with socket.create_server(("127.0.0.1", server.port)):
        pass
    server.drop_database()


KEY_LIMIT = 5
GARBAGE = "pk_0123456789ab_not-a-key-of-this-server"


def test_failed_keys_are_counted_once_across_all_server_processes(tmp_path):
    # given a server of four processes that locks out after KEY_LIMIT failed keys
    server = start_server(
        tmp_path,
        WEB_PROCESSES="4",
        API_KEY_FAILURE_LIMIT=str(KEY_LIMIT),
        API_KEY_LOCKOUT_SECONDS="600",
    )
    try:
        wait_until(lambda: len(_server_processes(server)) == 4)
        # when one client sends bad keys, each on a new connection (any process may take it)
        answers = [
            requests.get(
                f"{server.url}/api/v1/tasks/",
                headers={"Authorization": f"Bearer {GARBAGE}", "Connection": "close"},
                timeout=30,
            ).status_code
            for _ in range(4 * KEY_LIMIT)
        ]
        # then the limit holds for the server as a whole, not once per process
        assert answers == [401] * KEY_LIMIT + [429] * (3 * KEY_LIMIT)
        # and a good key from the same address is still served
        assert server.api().get(f"{server.url}/api/v1/tasks/", timeout=30).status_code == 200
    finally:
        server.stop()
        server.drop_database()


def test_a_thousand_idle_connections_leave_the_server_accepting_and_serving(tmp_path):
    # given a server of one process (every connection lands on it)
    server = start_server(tmp_path, WEB_PROCESSES="1")
    idle = []
    try:
        # when more workers keep connections open than waitress's default limit (100) and
        # than select() can watch (descriptors past 1024)
        for _ in range(1100):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        # then a new client is still answered
        assert requests.get(f"{server.url}/healthz", timeout=20).status_code == 200
        # and so is a request on connections opened long before
        for sock in idle[::110]:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 200"), "an idle connection was not served"
    finally:
        for sock in idle:
            sock.close()
        server.stop()
        server.drop_database()


@pytest.mark.execution
def test_a_worker_whose_lease_setting_is_longer_fences_by_the_servers_lease(cluster, tmp_path):
    # given a worker configured for a 30 s lease against a server whose lease is 2 s,
    # reaching the server through a link the test can cut
    base = cluster.register(SCRIPTS / "exec_wait.py")
    queue = cluster.queue("longer-lease")
    proxy = TcpProxy(cluster.server.port)
    try:
        cluster.start_worker(
            queue,
            PIPELINES_API_URL=proxy.url,
            PIPELINES_LEASE_SECONDS="30",
            PIPELINES_HEARTBEAT_SECONDS="",
        )
        task_id = cluster.launch(base, queue, {"handshake_dir": tmp_path})
        runs = tmp_path / "runs.txt"
        line = wait_until(lambda: runs.exists() and runs.read_text(), timeout=60)
        step_pid = int(line.split("pid=")[1].split()[0])
        # when the worker can no longer reach the server
        proxy.cut()
        # then by the time the server's lease has run out and it fails the task, the worker
        # has already killed the step (it fenced by the 2 s lease the claim told it)
        task = cluster.wait_for_status(task_id, "failed", timeout=30)
        assert "stopped heartbeating" in task["status_reason"]
        assert not pid_alive(step_pid)
    finally:
        proxy.restore()
        (tmp_path / "go").touch()
