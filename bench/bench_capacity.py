"""Capacity: many workers, pipelines and logging clients on one server at once.

Per lane (PostgreSQL + RabbitMQ, and the default install: SQLite + the embedded Redis), on
127.0.0.1 only: a server (`pipelines server`, as many processes as its setting gives), the
server worker, real step workers running trivial steps, and, from this process
(bench/capacity_load.py): 1,000 simulated step workers heartbeating a running task each at
the real worker's intervals, 100 concurrent 10-step pipelines, and 50 clients logging
scalars and console lines. Reports requests/s, p50/p99 per endpoint kind, pipelines
completed per minute, and what was acknowledged against what the database holds.

Sizes by environment: BENCH_CAPACITY_LANES ("postgres sqlite"), BENCH_CAPACITY_SECONDS
(120), BENCH_CAPACITY_WORKERS (1000), BENCH_CAPACITY_PIPELINES (100), BENCH_CAPACITY_CLIENTS
(50), BENCH_CAPACITY_STEP_WORKERS (4); BENCH_POSTGRES_URL and BENCH_AMQP_URL name the
services (this machine's, on 127.0.0.1, by default).
"""

import json
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

from tests.support import descendants, fresh_database_url, start_cluster

from .capacity_load import LoadPlan, run_load
from .common import machine, write_result

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
STEPS_PER_PIPELINE = 10
PROJECT = "bench-capacity"
# Production timings: the cluster helpers shrink them for tests; "" means the default.
PRODUCTION_SERVER = {
    "TASK_LEASE_SECONDS": "",
    "LOCAL_RUN_LEASE_SECONDS": "",
    "SWEEP_INTERVAL_SECONDS": "",
    "QUEUED_REPUBLISH_SECONDS": "",
}
PRODUCTION_WORKER = {
    "PIPELINES_HEARTBEAT_SECONDS": "",
    "PIPELINES_LEASE_SECONDS": "",
    "PIPELINES_WORKER_HEARTBEAT_SECONDS": "",
}

SEED = """
import json, uuid
from django.contrib.auth import get_user_model
from django.utils import timezone
from webapp.core.models import Project, Task
user = get_user_model().objects.get(username="admin")
project = Project.objects.get_or_create(name={project!r}, defaults={{"created_by": user}})[0]
now = timezone.now()
def task(name, worker):
    return Task(id=uuid.uuid4().hex, project=project, name=name, status="in_progress",
                attempt=1, max_attempts=1, worker=worker, started=now, last_heartbeat=now,
                created=now, last_update=now, created_by=user)
simulated = [task(f"simulated step {{i}}", f"sim-{{i}}") for i in range({workers})]
clients = [task(f"logging client {{i}}", "") for i in range({clients})]
Task.objects.bulk_create(simulated + clients, batch_size=500)
print(json.dumps({{"simulated": [t.id for t in simulated], "clients": [t.id for t in clients]}}))
"""

STORED = """
import json
from django.db.models import Count
from webapp.core.models import LogLine, PipelineRun, Scalar, Task
clients = {clients!r}
simulated = {simulated!r}
runs = dict(PipelineRun.objects.values_list("status").annotate(n=Count("id")))
print(json.dumps({{
    "scalars": Scalar.objects.filter(task_id__in=clients).count(),
    "console_lines": LogLine.objects.filter(task_id__in=clients, stream="stdout").count(),
    "simulated_still_running": Task.objects.filter(pk__in=simulated, status="in_progress").count(),
    "pipeline_runs": runs,
}}))
"""

STEP_CODE = "print('step done')\n"


def _size(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


def worker_timings(cluster) -> dict:
    """The intervals a real step worker started with the production defaults would use."""
    from pipelines.worker.step_worker import WorkerConfig

    env = cluster.worker_env(**PRODUCTION_WORKER)
    with mock.patch.dict(os.environ, env, clear=True):
        config = WorkerConfig.from_env(["default"])
    return {
        "heartbeat": config.heartbeat,
        "presence": config.presence_interval,
        "lease": config.lease,
        # StepWorker's beat client: a heartbeat must fail fast, not eat into the lease
        "timeout": max(1.0, min(5.0, config.lease / 3)),
    }


def chain(base_id: str, queue: str, steps: int = STEPS_PER_PIPELINE) -> list[dict]:
    return [
        {
            "name": f"s{n}",
            "base_task_id": base_id,
            "parents": [f"s{n - 1}"] if n else [],
            "execution_queue": queue,
        }
        for n in range(steps)
    ]


@contextmanager
def lane_services(lane: str, folder: Path):
    """(database, broker environment) for a lane: PostgreSQL + RabbitMQ, or the defaults."""
    if lane == "postgres":
        with mock.patch.dict(os.environ, {"DATABASE_URL": POSTGRES_URL}):
            database = fresh_database_url(folder)
        with mock.patch.dict(os.environ, {"PIPELINES_TEST_BROKER_URL": AMQP_URL}):
            yield database
        return
    with mock.patch.dict(os.environ):
        os.environ.pop("PIPELINES_TEST_BROKER_URL", None)
        os.environ.pop("DATABASE_URL", None)
        yield None


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summarize_load(recorder, seconds: float) -> dict:
    kinds = {}
    for kind, samples in sorted(recorder.latencies.items()):
        kinds[kind] = {
            "n": len(samples),
            "errors": recorder.errors.get(kind, 0),
            "p50_ms": percentile(samples, 50),
            "p99_ms": percentile(samples, 99),
            "per_s": len(samples) / seconds,
        }
    for kind, errors in recorder.errors.items():
        kinds.setdefault(kind, {"n": 0, "errors": errors})
    everything = [ms for samples in recorder.latencies.values() for ms in samples]
    return {
        "window_s": seconds,
        "requests": recorder.requests,
        "requests_per_s": recorder.requests / seconds,
        "p50_ms": percentile(everything, 50),
        "p99_ms": percentile(everything, 99),
        "kinds": kinds,
        "pipelines_completed": recorder.pipelines_completed,
        "pipelines_failed": recorder.pipelines_failed,
        "pipelines_per_minute": recorder.pipelines_completed / seconds * 60,
        "pipeline_seconds_p50": (
            statistics.median(recorder.pipeline_seconds) if recorder.pipeline_seconds else None
        ),
        "scalars_acked": recorder.scalars_acked,
        "console_lines_acked": recorder.lines_acked,
        "leases_lost": recorder.leases_lost,
    }


def start_lane(lane: str, folder: Path, step_workers: int):
    """The cluster of a lane with production timings, its real step workers, and a queue."""
    with lane_services(lane, folder) as database:
        cluster = start_cluster(folder / "cluster", database=database, **PRODUCTION_SERVER)
    try:
        queue = cluster.queue("steps")
        for _ in range(step_workers):
            cluster.start_worker(queue, **PRODUCTION_WORKER)
    except BaseException:
        cluster.stop()
        raise
    return cluster, queue


def plan_for(cluster, queue: str, sizes: dict, **overrides) -> LoadPlan:
    seeded = json.loads(
        cluster.server.manage(
            "shell",
            "-c",
            SEED.format(project=PROJECT, workers=sizes["workers"], clients=sizes["clients"]),
        )
        .strip()
        .splitlines()[-1]
    )
    base = cluster.post(
        "tasks/",
        {
            "project_name": PROJECT,
            "name": "trivial step",
            "script": {"entry_point": "step.py", "code": STEP_CODE},
        },
    )
    timings = worker_timings(cluster)
    return LoadPlan(
        url=cluster.server.url,
        worker_key=cluster.server.worker_key,
        user_key=cluster.server.api_key,
        sim_tasks=seeded["simulated"],
        client_tasks=seeded["clients"],
        heartbeat_seconds=timings["heartbeat"],
        presence_seconds=timings["presence"],
        heartbeat_timeout=timings["timeout"],
        worker_queues=[cluster.queue("simulated")],
        project_name=PROJECT,
        pipeline_steps=chain(base["id"], queue),
        pipeline_queue=queue,
        pipelines=sizes["pipelines"],
        **overrides,
    )


def stored_counts(cluster, plan: LoadPlan) -> dict:
    code = STORED.format(clients=plan.client_tasks, simulated=plan.sim_tasks)
    return json.loads(cluster.server.manage("shell", "-c", code).strip().splitlines()[-1])


def _cpu_seconds(pid: int) -> float:
    """A process's CPU time and that of the children it has reaped (a PostgreSQL backend
    that ended, a finished step), so a part's processes that end in the window count."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


class CpuMeter:
    """CPU seconds used over the window by each part: the web server's processes, the
    server worker, the step workers with their steps, the database's backends for this
    lane, and this load generator; with the machine's own total for scale."""

    def __init__(self, cluster, database_name: str | None):
        self.cluster, self.database_name = cluster, database_name
        self.marks: dict[str, dict[str, float]] = {}

    def parts(self) -> dict[str, list[int]]:
        server_worker = [p for p in self.cluster.processes if p.name == "server-worker"]
        step_workers = [p for p in self.cluster.processes if p.name != "server-worker"]
        return {
            "web server": _tree(self.cluster.server.process.pid),
            "server worker": [q for p in server_worker for q in _tree(p.pid)],
            "step workers and steps": [q for p in step_workers for q in _tree(p.pid)],
            "database": self._database_backends(),
            "load generator": [os.getpid()],
        }

    def _database_backends(self) -> list[int]:
        """All of the PostgreSQL server (its postmaster, its backends for every database,
        its writers): on a quiet machine, the lane's; a backend's own CPU is counted while
        it lives and in the postmaster's once it has ended."""
        if not self.database_name:
            return []  # SQLite runs inside the server processes
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            (folder,) = conn.execute("SHOW data_directory").fetchone()
        try:
            postmaster = int((Path(folder) / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return _tree(postmaster)

    def __call__(self, mark: str) -> None:
        # Per process, so one that starts during the window (a database connection is
        # replaced after CONN_MAX_AGE) counts from zero; one that ends in it is missed, so
        # each part is a lower bound.
        snapshot = {
            name: {pid: _cpu_seconds(pid) for pid in pids} for name, pids in self.parts().items()
        }
        snapshot["machine (all processes)"] = {0: _machine_cpu_seconds()}
        self.marks[mark] = (time.monotonic(), snapshot)

    def used(self) -> dict[str, float]:
        if "start" not in self.marks or "end" not in self.marks:
            return {}
        (began, start), (ended, end) = self.marks["start"], self.marks["end"]
        wall = ended - began
        # Every process of a part at either mark: one that ended in the window is in its
        # parent's reaped time at the end, so its time before the window is taken off.
        return {
            name: (sum(pids.values()) - sum(start.get(name, {}).values())) / wall
            for name, pids in end.items()
        }


def _machine_cpu_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(value) for i, value in enumerate(fields) if i not in (3, 4))
    return busy / os.sysconf("SC_CLK_TCK")


def run_lane(lane: str, sizes: dict, seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-capacity-{lane}-") as folder:
        cluster, queue = start_lane(lane, Path(folder), sizes["step_workers"])
        try:
            database = cluster.server.env["DATABASE_URL"]
            name = database.rsplit("/", 1)[-1] if database.startswith("postgres") else None
            meter = CpuMeter(cluster, name)
            plan = plan_for(cluster, queue, sizes, duration=seconds, on_window=meter)
            load_before = os.getloadavg()
            started = time.monotonic()
            recorder = run_load(plan)
            result = summarize_load(recorder, recorder.window_end - recorder.window_start)
            result["wall_s"] = time.monotonic() - started
            result["load_average_before"] = load_before
            result["load_average_after"] = os.getloadavg()
            result["stored"] = stored_counts(cluster, plan)
            result["timings"] = {
                "heartbeat_s": plan.heartbeat_seconds,
                "presence_s": plan.presence_seconds,
            }
            result["cores_used"] = meter.used()
            result["server_processes"] = 1 + len(descendants(cluster.server.process.pid))
        finally:
            cluster.stop()
    return result


def report(lane: str, sizes: dict, result: dict) -> None:
    label = {"postgres": "PostgreSQL + RabbitMQ", "sqlite": "SQLite + embedded Redis"}[lane]
    print(
        f"capacity, {label}: {sizes['workers']} simulated workers (heartbeat every"
        f" {result['timings']['heartbeat_s']:g} s, presence every"
        f" {result['timings']['presence_s']:g} s), {sizes['pipelines']} pipelines x"
        f" {STEPS_PER_PIPELINE} steps on {sizes['step_workers']} step workers,"
        f" {sizes['clients']} logging clients, {result['window_s']:.0f} s"
    )
    print(
        f"  requests/s {result['requests_per_s']:.0f}   all kinds p50"
        f" {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms   target p99 < 250 ms"
    )
    for kind, row in result["kinds"].items():
        if not row.get("n"):
            print(f"  {kind:<18} no answers ({row['errors']} errors)")
            continue
        print(
            f"  {kind:<18} {row['per_s']:>7.1f}/s  p50 {row['p50_ms']:>7.1f} ms"
            f"  p99 {row['p99_ms']:>7.1f} ms  errors {row['errors']}"
        )
    stored = result["stored"]
    print(
        f"  pipelines completed {result['pipelines_per_minute']:.1f}/min"
        f" ({result['pipelines_completed']} completed, {result['pipelines_failed']} not)"
    )
    print(
        f"  scalars acknowledged {result['scalars_acked']} stored {stored['scalars']};"
        f" console lines acknowledged {result['console_lines_acked']}"
        f" stored {stored['console_lines']}"
    )
    print(
        f"  leases lost {result['leases_lost']}; simulated tasks still running"
        f" {stored['simulated_still_running']} of {sizes['workers']}"
    )
    cores = result.get("cores_used") or {}
    if cores:
        print("  cores used: " + ", ".join(f"{name} {value:.2f}" for name, value in cores.items()))
        served = result["requests_per_s"]
        ours = sum(v for k, v in cores.items() if k not in ("machine (all processes)",))
        print(
            f"  CPU per request sent by the bench (all of this lane): {ours / served * 1000:.2f} ms"
        )
    before, after = result["load_average_before"], result["load_average_after"]
    print(f"  load average before {before[0]:.2f}, after {after[0]:.2f}")


def run() -> dict:
    lanes = os.environ.get("BENCH_CAPACITY_LANES", "postgres sqlite").split()
    seconds = float(os.environ.get("BENCH_CAPACITY_SECONDS", "") or 120)
    sizes = {
        "workers": _size("BENCH_CAPACITY_WORKERS", 1000),
        "pipelines": _size("BENCH_CAPACITY_PIPELINES", 100),
        "clients": _size("BENCH_CAPACITY_CLIENTS", 50),
        "step_workers": _size("BENCH_CAPACITY_STEP_WORKERS", 4),
    }
    results = {"machine": machine(), "sizes": sizes, "lanes": {}}
    for lane in lanes:
        result = run_lane(lane, sizes, seconds)
        results["lanes"][lane] = result
        report(lane, sizes, result)
    write_result("capacity", results)
    return results
