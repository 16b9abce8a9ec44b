"""R103: step workers on two other machines, each knowing only the broker URL, the server
URL and a worker key; one of them cut off mid-step.

Three hosts, each a network namespace of its own made by the test (tests/netns.py: a bridge
on the server host, a veth pair to each worker host, a private subnet that exists only
inside them). The server host runs the web server, the server worker, the broker and moto's
S3 server, so artifacts never touch a disk a step could share with the server. PostgreSQL
and RabbitMQ (when the suite runs on them) listen on this machine's 127.0.0.1 only, so the
server host reaches them through forwarders whose listening sockets live in its namespace:
to the workers they are services of the server host like any other. Without a test broker
the server host runs its own Redis on its address.
"""

import json
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
import requests

from tests.netns import Forward, Hosts, NamespacesUnavailable
from tests.support import (
    REPO,
    Cluster,
    ServerProcess,
    fresh_database_url,
    pid_alive,
    run_script,
    start_process,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
SCRIPTS = Path(__file__).parent / "scripts"
BUCKET = "pipelines-multihost"
SERVER_PORT, REDIS_PORT, MOTO_PORT, BROKER_PORT, DATABASE_PORT = 8000, 6379, 5000, 5673, 15432
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _moved(url: str, host: str, port: int) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def hosts():
    made = Hosts("server", "east", "west")
    try:
        made.create()
    except NamespacesUnavailable as error:
        pytest.skip(f"network namespaces cannot be created here ({error}): multi-host test skipped")
    try:
        yield made
    finally:
        made.delete()


def _plain_env() -> dict:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIPELINES_", "DJANGO_", "DATABASE_URL", "CELERY_", "AWS_"))
    }


class MultiHost:
    """The server host's processes and forwarders, and the test's views of them."""

    def __init__(self, hosts: Hosts, data_dir: Path):
        self.hosts, self.data_dir = hosts, data_dir
        self.address = hosts.addresses["server"]
        self.forwards: list[Forward] = []
        self.cluster: Cluster | None = None

    def forward(self, listen: tuple, target: tuple) -> Forward:
        forward = Forward(listen, target)
        self.forwards.append(forward)
        return forward

    def start_on(self, host: str, name: str, argv: list[str], env: dict):
        process = start_process(
            name, self.hosts.run(host, argv), env, self.data_dir / "logs" / f"{name}.log"
        )
        self.cluster.processes.append(process)
        return process

    def bring_up(self) -> Cluster:
        server_ns = self.hosts.namespaces["server"]
        # The database: this machine's PostgreSQL seen from the server host, or SQLite there.
        database_url, drop = fresh_database_url(self.data_dir)
        on_server_host = database_url
        if database_url.startswith("postgres"):
            parts = urlsplit(database_url)
            self.forward(
                (server_ns, "127.0.0.1", DATABASE_PORT), (None, parts.hostname, parts.port or 5432)
            )
            on_server_host = _moved(database_url, "127.0.0.1", DATABASE_PORT)
        # The broker, at the server host's address.
        test_broker = os.environ.get("PIPELINES_TEST_BROKER_URL")
        if test_broker:
            parts = urlsplit(test_broker)
            default = 5672 if parts.scheme.startswith("amqp") else 6379
            self.forward(
                (server_ns, self.address, BROKER_PORT),
                (None, parts.hostname, parts.port or default),
            )
            broker = _moved(test_broker, self.address, BROKER_PORT)
        else:
            broker = f"redis://{self.address}:{REDIS_PORT}/0"
        prefix = self.hosts.tag
        env = {
            **_plain_env(),
            **AWS,
            "PIPELINES_DATA_DIR": str(self.data_dir / "server"),
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "PYTHONPATH": str(REPO),
            "ALLOWED_HOSTS": f"127.0.0.1,localhost,{self.address}",
            "CELERY_BROKER_URL": broker,
            "PIPELINES_SERVER_QUEUE": f"{prefix}-server",
            "TASK_LEASE_SECONDS": "2",
            "SWEEP_INTERVAL_SECONDS": "0.5",
            "QUEUED_REPUBLISH_SECONDS": "2",
            "ARTIFACT_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": f"http://127.0.0.1:{MOTO_PORT}",
            "AWS_S3_REGION_NAME": "us-east-1",
        }
        api = self.forward((None, "127.0.0.1", 0), (server_ns, self.address, SERVER_PORT))
        server = ServerProcess(
            url=f"http://127.0.0.1:{api.port}",
            api_key="",
            worker_key="",
            password="",
            data_dir=self.data_dir / "server",
            env=env,
            port=SERVER_PORT,
            drop_database=drop,
        )
        server.data_dir.mkdir(parents=True, exist_ok=True)
        server.manage("migrate", "--noinput", "-v0")
        creds = json.loads(server.manage("bootstrap", "--json", "--password", "admin-password"))
        server.api_key, server.worker_key = creds["api_key"], creds["worker_key"]
        # A broker of the server host's own goes with its namespace; a test broker's queues
        # are removed by name, as every cluster's are.
        own = None if test_broker else _GoesWithTheHost()
        self.cluster = Cluster(server, test_broker or broker, prefix, self.data_dir, own)
        host_env = {**env, "DATABASE_URL": on_server_host}
        if not test_broker:
            self.start_on(
                "server",
                "redis",
                [
                    *(_redis_server(), "--bind", self.address, "--port", str(REDIS_PORT)),
                    *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
                ],
                host_env,
            )
        self.start_on(
            "server",
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(MOTO_PORT)],
            host_env,
        )
        s3 = self.forward((None, "127.0.0.1", 0), (server_ns, "127.0.0.1", MOTO_PORT))
        self.s3_endpoint = f"http://127.0.0.1:{s3.port}"
        wait_until(self._s3_up, timeout=60, interval=0.2, message="moto on the server host")
        self.s3().create_bucket(Bucket=BUCKET)
        server_argv = [sys.executable, "-m", "pipelines.launcher.cli"]
        self.start_on(
            "server",
            "server",
            [*server_argv, "server", "--host", self.address, "--port", str(SERVER_PORT)],
            host_env,
        )
        wait_until(self._server_up, timeout=60, interval=0.2, message="the server host's server")
        worker = self.start_on("server", "server-worker", [*server_argv, "serverworker"], host_env)
        worker.wait_for_log("sweeping every", timeout=60)
        self.worker_broker = broker
        return self.cluster

    def _s3_up(self) -> bool:
        try:
            return requests.get(f"{self.s3_endpoint}/moto-api/", timeout=1).ok
        except requests.RequestException:
            return False

    def _server_up(self) -> bool:
        for process in self.cluster.processes:
            if process.process.poll() is not None:
                raise AssertionError(f"{process.name} exited:\n{process.log()[-3000:]}")
        try:
            return requests.get(f"{self.cluster.server.url}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def start_worker(self, host: str, *queues: str):
        """A step worker on `host` that knows the broker URL, the server URL and a key."""
        name = f"{self.hosts.tag}-{host}"
        env = {
            **_plain_env(),
            "CELERY_BROKER_URL": self.worker_broker,
            "PIPELINES_API_URL": f"http://{self.address}:{SERVER_PORT}",
            "PIPELINES_API_KEY": self.cluster.server.worker_key,
            "PIPELINES_CONFIG_FILE": str(self.data_dir / host / "no-config.json"),
            "PIPELINES_CACHE_DIR": str(self.data_dir / host / "cache"),
            "PIPELINES_WORK_DIR": str(self.data_dir / host / "work"),
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
        }
        (self.data_dir / host / "work").mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "pipelines.launcher.cli", "worker", "--name", name]
        for queue in queues:
            argv += ["-q", queue]
        process = self.start_on(host, name, argv, env)
        wait_until(lambda: self.cluster._listed(process), timeout=60, interval=0.2, message=name)
        return process

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        for forward in self.forwards:
            forward.close()


class _GoesWithTheHost:
    def stop(self) -> None:
        """Nothing to do: the Redis process is stopped with the host's other processes."""


def _redis_server() -> str:
    from pipelines.launcher.embedded_redis import redis_executable

    return redis_executable()


def _register(cluster: Cluster, script: str) -> str:
    result = run_script(SCRIPTS / script, cluster.server.sdk_env())
    assert result.returncode == 0, result.stderr
    return re.search(r"TASK_ID ([0-9a-f]{32})", result.stdout).group(1)


def _runs(folder: Path) -> list[dict]:
    path = folder / "runs.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return [dict(field.split("=") for field in line.split()) for line in lines]


def test_steps_run_on_two_worker_hosts_and_a_cut_off_host_is_fenced_and_rerun(hosts, tmp_path):
    # given the server, its database, broker and S3 on one host and a worker on each other
    world = MultiHost(hosts, tmp_path / "hosts")
    try:
        cluster = world.bring_up()
        east, west, shared = cluster.queue("east"), cluster.queue("west"), cluster.queue("any")
        workers = {
            "east": world.start_worker("east", east, shared),
            "west": world.start_worker("west", west, shared),
        }
        produce = _register(cluster, "multihost_produce.py")
        join = _register(cluster, "multihost_join.py")
        cluster.patch(f"tasks/{join}/", {"max_attempts": 2})
        handshake = tmp_path / "handshake"
        handshake.mkdir()

        # when a pipeline runs one step on each host, by queue, and a third on either
        controller = cluster.post(
            "tasks/", {"project_name": "e2e-multihost", "name": "two hosts", "type": "controller"}
        )
        steps = [
            {
                "name": "first",
                "base_task_id": produce,
                "execution_queue": east,
                "parameter_override": {"General/label": "made in the east"},
            },
            {
                "name": "second",
                "base_task_id": produce,
                "execution_queue": west,
                "parameter_override": {"General/label": "made in the west"},
            },
            {
                "name": "join",
                "base_task_id": join,
                "parents": ["first", "second"],
                "execution_queue": shared,
                "parameter_override": {
                    "General/first": "${first.id}",
                    "General/second": "${second.id}",
                    "General/handshake_dir": str(handshake),
                },
            },
        ]
        run = cluster.post(
            "pipelines/", {"controller": controller["id"], "steps": steps, "default_queue": shared}
        )
        wait_until(lambda: _runs(handshake), timeout=60, interval=0.1, message="the join step")

        def node(name: str) -> dict:
            nodes = cluster.get(f"pipelines/{run['id']}/")["nodes"]
            return next(n for n in nodes if n["name"] == name)

        # then each producing step ran on its own host
        assert cluster.task(node("first")["task"])["worker"] == workers["east"].name
        assert cluster.task(node("second")["task"])["worker"] == workers["west"].name
        # and the join step's first attempt runs on one of them, having read both artifacts
        join_task = node("join")["task"]
        first_run = _runs(handshake)[0]
        assert first_run["attempt"] == "1"
        cut_host = next(
            h for h, w in workers.items() if w.name == cluster.task(join_task)["worker"]
        )
        other_host = "west" if cut_host == "east" else "east"

        # when that host's link goes down mid-step
        hosts.cut(cut_host)

        # then the step is fenced on that host: killed there, before the rerun starts
        wait_until(lambda: len(_runs(handshake)) > 1, timeout=60, interval=0.1, message="rerun")
        rerun = _runs(handshake)[1]
        assert rerun["attempt"] == "2" and rerun["overlap"] == "0", rerun
        assert not pid_alive(int(first_run["pid"]))
        workers[cut_host].wait_for_log(f"heartbeat for {join_task} failed", timeout=30)
        assert "stopped heartbeating (attempt 1)" in cluster.console_text(join_task)
        # and the rerun is on the other host
        task = cluster.task(join_task)
        assert task["attempt"] == 2 and task["worker"] == workers[other_host].name

        # when the step may finish, the pipeline completes with what both hosts made
        (handshake / "go").touch()
        wait_until(
            lambda: cluster.get(f"pipelines/{run['id']}/")["status"] == "completed",
            timeout=60,
            interval=0.2,
            message="the pipeline to complete",
        )
        artifacts = {a["name"]: a for a in cluster.get(f"tasks/{join_task}/artifacts/")}
        # (its URL names the server host's address; the test reaches it through its forward)
        path = urlsplit(artifacts["joined"]["url"]).path
        joined = cluster.server.api().get(f"{cluster.server.url}{path}", timeout=30)
        assert joined.ok and json.loads(joined.content) == {
            "read": ["made in the east", "made in the west"]
        }
        # and every artifact's bytes are in S3, none on the server host's disk
        keys = [o["Key"] for o in world.s3().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert len(keys) == 3, keys
        local = cluster.server.data_dir / "artifacts"
        assert not local.exists() or not any(p.is_file() for p in local.rglob("*"))
    finally:
        (tmp_path / "handshake" / "go").touch()
        world.stop()
