"""Broker outages at each moment of a pipeline step (reliability.md R74-R76).

The broker goes away while a step runs, while its claim is being answered, and while its
final report is; it comes back after a gap. Afterwards every worker consumes again, the
server worker has taken no step message, no worker spun while the broker was away, the
pipeline completes and each step ran once.

The broker belongs to this module: on the Redis lanes a Redis server it starts, kills
(SIGKILL) and starts again; on the RabbitMQ lane the machine's RabbitMQ behind a TCP proxy
that the test cuts (every connection dropped, new ones refused) and restores.
"""

import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from pipelines.launcher.embedded_redis import EmbeddedRedis
from tests.support import delete_broker_queues, start_cluster, wait_until
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.execution]

HANDSHAKE_FILES = ("go-a", "go-b")
# The longest test outage: long enough for every reconnection backoff to pass its first
# steps; the code is meant for 120 s and more.
LONG_OUTAGE = 35.0
SHORT_OUTAGE = 6.0
# A worker waiting out an outage may use this share of one core, at most.
IDLE_CPU_SHARE = 0.2


class KilledRedis:
    """A Redis server of the test's own, killed with SIGKILL and started again."""

    def __init__(self, folder: Path):
        self.redis = EmbeddedRedis(folder, log_path=folder / "redis.log").start()
        self.url = self.redis.url

    def down(self) -> None:
        self.redis.process.kill()
        self.redis.process.wait(10)

    def up(self) -> None:
        if self.redis.process.poll() is not None:
            self.redis.start()

    def stop(self) -> None:
        self.redis.stop()


class CutRabbit:
    """The machine's RabbitMQ behind a proxy: cut drops every connection and refuses new."""

    def __init__(self, real_url: str):
        parts = urlsplit(real_url)
        self.real_url = real_url
        self.proxy = TcpProxy(parts.port or 5672)
        netloc = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
        self.url = urlunsplit(parts._replace(netloc=f"{netloc}:{self.proxy.port}"))

    def down(self) -> None:
        self.proxy.cut()

    def up(self) -> None:
        if self.proxy._listener is None:
            self.proxy.restore()

    def stop(self) -> None:
        self.proxy.cut()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    real = os.environ.get("PIPELINES_TEST_BROKER_URL", "")
    if real.startswith("amqp"):
        owned = CutRabbit(real)
    else:
        owned = KilledRedis(tmp_path_factory.mktemp("outage-broker"))
    yield owned
    owned.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, broker):
    """A cluster on `broker` whose reconciler republishes unclaimed tasks after 2 s."""
    running = start_cluster(
        tmp_path_factory.mktemp("outage-cluster"), broker=broker, QUEUED_REPUBLISH_SECONDS="2"
    )
    yield running
    running.stop()
    if isinstance(broker, CutRabbit):
        names = [*running.queues, f"{running.prefix}-server"]
        delete_broker_queues(broker.real_url, running.prefix, names)


@pytest.fixture(autouse=True)
def broker_running(broker):
    """Every test ends with the broker up, whatever it did to it."""
    yield
    broker.up()


@pytest.fixture
def api_proxy(cluster):
    proxy = TcpProxy(cluster.server.port)
    yield proxy
    proxy.release_holds()
    proxy.cut()


def _start_pipeline(cluster, base: str, folder: Path, queue: str, steps: int = 3) -> str:
    """a (waits for go-a) -> b (waits for go-b) -> c, handed to the server; the controller.
    With steps=1, a single step that only records its run."""
    controller = cluster.post(
        "tasks/", {"project_name": "e2e-faults", "name": "outage pipeline", "type": "controller"}
    )
    shape = (("a", [], "wait"), ("b", ["a"], "wait"), ("c", ["b"], "record"))
    if steps == 1:
        shape = (("only", [], "record"),)
    definition = []
    for name, parents, mode in shape:
        values = {"mode": mode, "handshake_dir": str(folder), "go_file": f"go-{name}"}
        definition.append(
            {
                "name": name,
                "base_task_id": base,
                "parents": parents,
                "parameter_override": {f"General/{k}": v for k, v in values.items()},
            }
        )
    cluster.post(
        "pipelines/", {"controller": controller["id"], "steps": definition, "default_queue": queue}
    )
    return controller["id"]


def _run_of(cluster, controller_id: str) -> dict | None:
    runs = cluster.get("pipelines/", page_size=1000)["results"]
    run = next((r for r in runs if r["controller"] == controller_id), None)
    return run and cluster.get(f"pipelines/{run['id']}/")


def _nodes(run: dict) -> dict:
    return {node["name"]: node for node in run["nodes"]}


def _wait_for_nodes(cluster, controller_id: str, timeout: float = 30, **statuses) -> dict:
    def reached():
        run = _run_of(cluster, controller_id)
        nodes = _nodes(run) if run else {}
        matched = all(nodes.get(n, {}).get("status") == s for n, s in statuses.items())
        return run if matched else None

    return wait_until(reached, timeout=timeout, interval=0.1, message=f"nodes {statuses}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds the given processes use between start() and share()."""

    def __init__(self, processes):
        self.processes = list(processes)

    def start(self) -> "CpuMeter":
        self.began = time.monotonic()
        self.before = {p.name: _cpu_seconds(p.pid) for p in self.processes}
        return self

    def share(self) -> dict[str, float]:
        wall = time.monotonic() - self.began
        return {p.name: (_cpu_seconds(p.pid) - self.before[p.name]) / wall for p in self.processes}


def _server_worker(cluster):
    return next(p for p in cluster.processes if p.name == "server-worker")


def _log_after(process, offset: int) -> str:
    return process.log()[offset:]


def _after_recovery(cluster, base, folder, controller_id, workers, since: int) -> None:
    """The pipeline completes with each step run once; the server worker consumes its own
    queue again, and only it; every step worker takes new tasks. `since`: the server
    worker's log length when the broker came back."""
    server_worker = _server_worker(cluster)
    wait_until(
        lambda: "Connected to" in _log_after(server_worker, since),
        timeout=60,
        interval=0.2,
        message="the server worker to reconnect",
    )
    run = wait_until(
        lambda: (r := _run_of(cluster, controller_id)) and r["status"] != "running" and r,
        timeout=120,
        interval=0.2,
        message="the pipeline to end after the outage",
    )
    nodes = _nodes(run)
    assert run["status"] == "completed", {n: (v["status"], v["message"]) for n, v in nodes.items()}
    runs = (folder / "runs.txt").read_text().splitlines()
    assert sorted(line.split()[0] for line in runs) == sorted(nodes[n]["task"] for n in "abc")
    assert all("attempt=1" in line for line in runs)
    # a one-step pipeline: its step messages go to the step worker, the engine's to the
    # server worker
    after = _start_pipeline(cluster, base, folder, workers[0][1], steps=1)
    wait_until(
        lambda: (r := _run_of(cluster, after)) and r["status"] == "completed",
        timeout=60,
        interval=0.2,
        message="a pipeline started after the outage to complete",
    )
    wait_until(
        lambda: "core.advance_pipeline" in _log_after(server_worker, since),
        timeout=30,
        interval=0.2,
        message="the server worker to take an engine message again",
    )
    # several tasks per queue: a server worker consuming step queues would take some
    for worker, queue in workers:
        launched = [
            cluster.launch(base, queue, {"mode": "record", "handshake_dir": folder})
            for _ in range(3)
        ]
        for task_id in launched:
            task = cluster.wait_for_status(task_id, "completed", "failed", timeout=60)
            assert (task["status"], task["worker"]) == ("completed", worker.name)
        assert worker.process.poll() is None
    assert "pipelines.run_task" not in server_worker.log()


def test_a_long_outage_during_a_step_leaves_no_worker_spinning_and_loses_nothing(
    cluster, broker, base, tmp_path
):
    steps, idle = cluster.queue("steps"), cluster.queue("idle")
    busy, spare = cluster.start_worker(steps), cluster.start_worker(idle)
    controller_id = _start_pipeline(cluster, base, tmp_path, steps)
    _wait_for_nodes(cluster, controller_id, a="running")
    (tmp_path / "go-a").touch()
    # b is launched by the server worker's engine: it has published to the step queue
    run = _wait_for_nodes(cluster, controller_id, a="completed", b="running")
    step_b = _nodes(run)["b"]["task"]
    # when the broker dies while step b runs, and b ends during the outage
    broker.down()
    (tmp_path / "go-b").touch()
    cluster.wait_for_status(step_b, "completed", timeout=30)
    meter = CpuMeter([busy, spare, _server_worker(cluster)]).start()
    time.sleep(LONG_OUTAGE)  # the outage itself
    shares = meter.share()
    since = len(_server_worker(cluster).log())
    broker.up()
    # then no worker spun while it waited for the broker
    assert all(share < IDLE_CPU_SHARE for share in shares.values()), shares
    workers = [(busy, steps), (spare, idle)]
    _after_recovery(cluster, base, tmp_path, controller_id, workers, since)


def test_an_outage_while_a_claim_is_answered_loses_nothing(
    cluster, broker, base, tmp_path, api_proxy
):
    steps = cluster.queue("claim")
    worker = cluster.start_worker(steps, PIPELINES_API_URL=api_proxy.url)
    controller_id = _start_pipeline(cluster, base, tmp_path, steps)
    _wait_for_nodes(cluster, controller_id, a="running")
    claim = api_proxy.hold_request_with(b"/claim/")
    (tmp_path / "go-a").touch()
    # when the broker dies while the claim of step b is on its way to the server
    assert claim.arrived.wait(30), "the claim of step b never came"
    broker.down()
    claim.release()
    # then the step runs, and the broker comes back after a gap
    run = _wait_for_nodes(cluster, controller_id, a="completed", b="running")
    time.sleep(SHORT_OUTAGE)  # the outage itself
    since = len(_server_worker(cluster).log())
    broker.up()
    (tmp_path / "go-b").touch()
    assert cluster.task(_nodes(run)["b"]["task"])["worker"] == worker.name
    _after_recovery(cluster, base, tmp_path, controller_id, [(worker, steps)], since)


def test_an_outage_while_the_final_report_is_answered_loses_nothing(
    cluster, broker, base, tmp_path, api_proxy
):
    steps = cluster.queue("report")
    worker = cluster.start_worker(steps, PIPELINES_API_URL=api_proxy.url)
    controller_id = _start_pipeline(cluster, base, tmp_path, steps)
    _wait_for_nodes(cluster, controller_id, a="running")
    (tmp_path / "go-a").touch()
    run = _wait_for_nodes(cluster, controller_id, a="completed", b="running")
    report = api_proxy.hold_request_with(b"/finish/")
    (tmp_path / "go-b").touch()
    # when the broker dies while step b's final report is on its way to the server
    assert report.arrived.wait(30), "the report of step b never came"
    broker.down()
    report.release()
    cluster.wait_for_status(_nodes(run)["b"]["task"], "completed", timeout=30)
    time.sleep(SHORT_OUTAGE)  # the outage itself
    since = len(_server_worker(cluster).log())
    broker.up()
    _after_recovery(cluster, base, tmp_path, controller_id, [(worker, steps)], since)
