"""Real processes for end-to-end tests: a server on 127.0.0.1, SDK scripts, bounded waits."""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, message: str = ""):
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


def fresh_database_url(data_dir: Path) -> tuple[str, callable]:
    """A new empty database for a server process; returns (url, drop)."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        return f"sqlite:///{data_dir / 'db.sqlite3'}", lambda: None
    import psycopg

    name = f"pipelines_e2e_{secrets.token_hex(4)}"
    parts = urlsplit(base)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop


# Settings of the suite's own environment that must not reach a `pipelines up` under test.
SUITE_SETTINGS = ("PIPELINES_", "CELERY_", "DJANGO_", "DATABASE_URL", "SECRET_KEY")


def up_env(home: Path, data_dir: Path, database_url: str, **extra) -> dict:
    """The environment of a `pipelines up` as a new user runs it: its own home (so its SDK
    config lands there, never in the real one), its data dir, a database, this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SUITE_SETTINGS)}
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "PIPELINES_DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "PYTHONPATH": str(REPO),
            **extra,
        }
    )
    return env


@dataclass
class ServerProcess:
    url: str
    api_key: str
    worker_key: str
    password: str
    data_dir: Path
    env: dict
    process: subprocess.Popen | None = None
    port: int = 0
    drop_database: object = None
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.launcher.cli", "server", "--port", str(self.port)],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, timeout=30, message=f"server on {self.url}")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"server exited: {self.log_path.read_text()[-3000:]}")
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def api(self, key: str | None = None) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key or self.api_key}"
        return session

    def sdk_env(self, **extra) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PIPELINES_", "DJANGO_", "DATABASE_URL"))
        }
        env.update(
            {
                "PIPELINES_API_URL": self.url,
                "PIPELINES_API_KEY": self.api_key,
                "PIPELINES_CACHE_DIR": str(self.data_dir / "sdk-cache"),
                "PIPELINES_CONFIG_FILE": str(self.data_dir / "no-config.json"),
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout


def start_server(data_dir: Path, database: tuple | None = None, **env_overrides) -> ServerProcess:
    """A migrated, bootstrapped server on a free port. `database` is a (url, drop) pair to
    use instead of a fresh database (e.g. one reached through a TcpProxy)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url, drop = database or fresh_database_url(data_dir)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
    env.update(
        {
            "PIPELINES_DATA_DIR": str(data_dir),
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "webapp.settings"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "TASK_LEASE_SECONDS": "3",
            **env_overrides,
        }
    )
    server = ServerProcess(
        url=f"http://127.0.0.1:{port}",
        api_key="",
        worker_key="",
        password="",
        data_dir=data_dir,
        env=env,
        port=port,
        drop_database=drop,
        log_path=data_dir / "server.log",
    )
    server.manage("migrate", "--noinput", "-v0")
    creds = json.loads(server.manage("bootstrap", "--json", "--password", "admin-password"))
    server.api_key, server.worker_key = creds["api_key"], creds["worker_key"]
    server.password = creds["password"]
    server.start()
    return server


def run_script(path: Path, env: dict, timeout: float = 120, cwd: Path | None = None, args=()):
    """Run a user script the way a user would: `python script.py`, bounded in time."""
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=cwd or path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---------------------------------------------------------------- process trees (execution tests)


def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (Linux /proc; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return [p for p in found if pid_alive(p)]


@dataclass
class ManagedProcess:
    """A child process in its own process group, logging to a file; stopped group-wide."""

    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        def seen():
            if text in self.log():
                return True
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.log()[-3000:]}")
            return False

        wait_until(seen, timeout=timeout, interval=0.1, message=f"{text!r} in {self.name} log")

    def wait_exit(self, seconds: float, logs_dir: Path | None = None) -> int:
        """Its exit code; past `seconds`, a failure that says what it and every process
        under it were doing: its output, the logs in `logs_dir`, each child's state."""
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            pass
        parts = [f"{self.name} did not exit within {seconds:g} s; its output:", self.log()[-4000:]]
        for log in sorted(Path(logs_dir).glob("*.log")) if logs_dir else []:
            parts += [f"--- {log.name} (end):", log.read_text(errors="replace")[-2500:]]
        for pid in [self.pid, *descendants(self.pid)]:
            parts.append(f"--- pid {pid}: {_process_state(pid)}")
        raise AssertionError("\n".join(parts))

    def signal_group(self, number: int) -> None:
        try:
            os.killpg(self.process.pid, number)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """SIGKILL the whole process group at once (a crash, as the OS would do it)."""
        self.signal_group(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the group, wait (bounded), then SIGKILL whatever is left of it."""
        if self.process.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.signal_group(signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(10)


def _process_state(pid: int) -> str:
    """A live process's command line, state, where it waits and its kernel stack (Linux)."""
    proc = Path("/proc") / str(pid)
    try:
        argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = next(
            (
                line
                for line in (proc / "status").read_text().splitlines()
                if line.startswith("State")
            ),
            "",
        )
        wchan = (proc / "wchan").read_text()
    except OSError as error:
        return f"gone ({error})"
    try:
        stack = (proc / "stack").read_text().strip().replace("\n", " | ")
    except OSError:
        stack = "(no kernel stack readable)"
    return f"{argv[:300]} | {state} | waits in {wchan or '-'} | {stack[:600]}"


def start_process(name: str, argv: list[str], env: dict, log_path: Path, cwd=None):
    """Start `argv` in its own session (so a group signal reaches it and its children only)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=cwd or REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return ManagedProcess(name, process, log_path)


def delete_broker_queues(broker_url: str, prefix: str, names) -> None:
    """Remove what a test run left on a shared broker: its queues (best effort)."""
    try:
        if broker_url.startswith(("redis://", "rediss://")):
            _delete_redis_keys(broker_url, prefix)
            return
        from kombu import Connection

        with Connection(broker_url, connect_timeout=3) as connection:
            channel = connection.channel()
            for name in names:
                try:
                    channel.queue_delete(name)
                except Exception:  # noqa: BLE001 - a queue nobody declared is fine
                    channel = connection.channel()
    except Exception as error:  # noqa: BLE001 - cleanup must not fail a run
        print(f"could not delete test queues on {broker_url}: {error}", file=sys.stderr)


def _delete_redis_keys(broker_url: str, prefix: str) -> None:
    """kombu keeps a queue as a list plus a binding set, and unacked messages in one hash."""
    import redis

    client = redis.Redis.from_url(broker_url, socket_timeout=5)
    for pattern in (f"{prefix}-*", f"_kombu.binding.{prefix}-*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)
    for tag, raw in client.hscan_iter("unacked"):
        try:
            routing_key = str(json.loads(raw)[-1])  # [message, exchange, routing key]
        except (ValueError, LookupError, TypeError):
            continue
        if routing_key.startswith(f"{prefix}-"):
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


# ---------------------------------------------------------------- a whole cluster


@dataclass
class Cluster:
    """A server, its broker, the server worker and step workers, all real processes.

    Queue names carry a per-run prefix, so runs sharing one broker (CI's Redis or RabbitMQ)
    never take each other's messages.
    """

    server: ServerProcess
    broker_url: str
    prefix: str
    data_dir: Path
    embedded_broker: object = None
    processes: list = field(default_factory=list)
    queues: set = field(default_factory=set)
    _count: int = 0

    def queue(self, label: str = "q") -> str:
        self._count += 1
        name = f"{self.prefix}-{label}-{self._count}"
        self.queues.add(name)
        return name

    def worker_env(self, **extra) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PIPELINES_", "DJANGO_", "DATABASE_URL", "CELERY_"))
        }
        env.update(
            {
                "PIPELINES_API_URL": self.server.url,
                "PIPELINES_API_KEY": self.server.worker_key,
                "PIPELINES_CONFIG_FILE": str(self.data_dir / "no-config.json"),
                "PIPELINES_CACHE_DIR": str(self.data_dir / "worker-cache"),
                "PIPELINES_WORK_DIR": str(self.data_dir / "work"),
                "CELERY_BROKER_URL": self.broker_url,
                "PIPELINES_HEARTBEAT_SECONDS": "0.5",
                "PIPELINES_LEASE_SECONDS": "2",
                "PIPELINES_WORKER_HEARTBEAT_SECONDS": "1",
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
            }
        )
        (self.data_dir / "work").mkdir(parents=True, exist_ok=True)
        env.update(extra)
        return env

    def start_worker(self, *queues: str, wait: bool = True, **env) -> ManagedProcess:
        """A step worker on `queues`; returns once the server lists it (it is consuming)."""
        self._count += 1
        name = f"{self.prefix}-worker-{self._count}"
        argv = [sys.executable, "-m", "pipelines.launcher.cli", "worker", "--name", name]
        for queue in queues:
            argv += ["-q", queue]
        worker = start_process(
            name, argv, self.worker_env(**env), self.data_dir / "logs" / f"{name}.log"
        )
        self.processes.append(worker)
        if wait:
            wait_until(
                lambda: self._listed(worker),
                timeout=30,
                interval=0.1,
                message=f"worker {name} to register",
            )
        return worker

    def _listed(self, worker: ManagedProcess) -> bool:
        if worker.process.poll() is not None:
            raise AssertionError(f"{worker.name} exited:\n{worker.log()[-3000:]}")
        return any(row["name"] == worker.name and row["alive"] for row in self.workers())

    def start_server_worker(self) -> ManagedProcess:
        process = start_process(
            "server-worker",
            [sys.executable, "-m", "pipelines.launcher.cli", "serverworker"],
            self.server.env,
            self.data_dir / "logs" / "server-worker.log",
        )
        self.processes.append(process)
        process.wait_for_log("sweeping every", timeout=30)
        return process

    # ------------------------------------------------------------ the API, as a test reads it

    def get(self, path: str, **params):
        response = self.server.api().get(f"{self.server.url}/api/v1/{path}", params=params)
        assert response.ok, (path, response.status_code, response.text)
        return response.json()

    def post(self, path: str, body: dict | None = None, key: str | None = None):
        response = self.server.api(key).post(f"{self.server.url}/api/v1/{path}", json=body or {})
        assert response.ok, (path, response.status_code, response.text)
        return response.json() if response.content else None

    def patch(self, path: str, body: dict):
        response = self.server.api().patch(f"{self.server.url}/api/v1/{path}", json=body)
        assert response.ok, (path, response.status_code, response.text)
        return response.json()

    def task(self, task_id: str) -> dict:
        return self.get(f"tasks/{task_id}/")

    def register(self, script: Path, **env) -> str:
        """Run a step script once as a user would; returns the base task it registered."""
        result = run_script(script, self.server.sdk_env(**env))
        assert result.returncode == 0, result.stderr
        return re.search(r"TASK_ID ([0-9a-f]{32})", result.stdout).group(1)

    def launch(self, base_id: str, queue: str, parameters: dict | None = None, **fields) -> str:
        """Clone a base task, override General parameters (and fields), enqueue the clone."""
        clone = self.post(f"tasks/{base_id}/clone/", {"name": "run"})
        if parameters:
            values = {"General": {k: str(v) for k, v in parameters.items()}}
            response = self.server.api().put(
                f"{self.server.url}/api/v1/tasks/{clone['id']}/hyperparameters/",
                json={"values": values},
            )
            assert response.ok, response.text
        if fields:
            self.patch(f"tasks/{clone['id']}/", fields)
        self.post(f"tasks/{clone['id']}/enqueue/", {"queue": queue})
        return clone["id"]

    def workers(self) -> list[dict]:
        data = self.get("workers/")
        return data["results"] if isinstance(data, dict) else data

    def queues_listed(self) -> dict[str, dict]:
        data = self.get("queues/", page_size=1000)
        rows = data["results"] if isinstance(data, dict) else data
        return {row["name"]: row for row in rows}

    def console(self, task_id: str) -> list[dict]:
        return self.get(f"tasks/{task_id}/console/", limit=10_000)

    def console_text(self, task_id: str) -> str:
        return "\n".join(line["text"] for line in self.console(task_id))

    def wait_for_status(self, task_id: str, *statuses: str, timeout: float = 30.0) -> dict:
        seen = {}

        def reached():
            seen["task"] = self.task(task_id)
            return seen["task"] if seen["task"]["status"] in statuses else None

        try:
            return wait_until(reached, timeout=timeout, interval=0.1)
        except AssertionError as error:
            task = seen.get("task") or {}
            raise AssertionError(
                f"task {task_id} is {task.get('status')} ({task.get('status_reason')}), "
                f"not {statuses}; console:\n{self.console_text(task_id)[-3000:]}"
            ) from error

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.server.stop()
        if self.embedded_broker is not None:
            self.embedded_broker.stop()
        else:
            delete_broker_queues(
                self.broker_url, self.prefix, [*self.queues, f"{self.prefix}-server"]
            )
        self.server.drop_database()


def start_cluster(
    data_dir: Path, broker=None, database: tuple | None = None, **server_env
) -> Cluster:
    """Broker (PIPELINES_TEST_BROKER_URL, else an embedded Redis), server, server worker.

    `broker`: a started broker the cluster takes over (anything with `.url` and `.stop()`,
    e.g. an EmbeddedRedis a test restarts); `server_env` overrides the server's settings
    (the server worker gets the same); `database` as in start_server.
    """
    from pipelines.launcher.embedded_redis import EmbeddedRedis

    data_dir.mkdir(parents=True, exist_ok=True)
    prefix = f"t{secrets.token_hex(3)}"
    embedded = broker
    broker_url = broker.url if broker is not None else os.environ.get("PIPELINES_TEST_BROKER_URL")
    if not broker_url:
        embedded = EmbeddedRedis(data_dir / "broker", log_path=data_dir / "redis.log").start()
        broker_url = embedded.url
    try:
        server = start_server(
            data_dir / "server",
            database=database,
            **{
                "CELERY_BROKER_URL": broker_url,
                "PIPELINES_SERVER_QUEUE": f"{prefix}-server",
                "TASK_LEASE_SECONDS": "2",
                "LOCAL_RUN_LEASE_SECONDS": "2",
                "SWEEP_INTERVAL_SECONDS": "0.5",
                **server_env,
            },
        )
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    cluster = Cluster(server, broker_url, prefix, data_dir, embedded_broker=embedded)
    try:
        cluster.start_server_worker()
    except BaseException:
        cluster.stop()
        raise
    return cluster
