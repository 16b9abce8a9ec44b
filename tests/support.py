"""Real processes for end-to-end tests: a server on 127.0.0.1, SDK scripts, bounded waits."""

import json
import os
import secrets
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
            [sys.executable, "-m", "pipelines.cli", "server", "--port", str(self.port)],
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


def start_server(data_dir: Path, **env_overrides) -> ServerProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url, drop = fresh_database_url(data_dir)
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
