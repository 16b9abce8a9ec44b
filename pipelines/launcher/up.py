"""`pipelines up`: migrations, the embedded broker, the web server, the server worker and a
step worker for `default` and one for `services`, all on this machine; Ctrl-C stops them all.

Every child runs in its own session, so a Ctrl-C in the terminal reaches `up` alone, which
then stops the children in order (step workers first, so they can report, the broker last).
On Linux each child also gets SIGTERM if `up` itself dies, so nothing is left behind.
"""

import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..client import ApiError, Client
from ..config import ClientConfig, save_config
from .embedded_redis import EmbeddedRedis, EmbeddedRedisError

SOURCE_ROOT = Path(__file__).resolve().parents[2]
# The `services` queue runs controllers that hold their slot for a whole pipeline, so it gets
# a worker of its own instead of sharing one with `default`.
STEP_QUEUES = ("default", "services")


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path
    stop_timeout: float


def _die_with_parent():
    """A preexec_fn asking Linux to SIGTERM the child when `up` dies (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def preexec() -> None:
        prctl(1, int(signal.SIGTERM), 0, 0, 0)

    return preexec


class Supervisor:
    """Starts children in their own sessions with a log file each; stops them group-wide."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict, stop_timeout: float = 10) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        child = Child(name, process, log_path, stop_timeout)
        self.children.append(child)
        return child

    def adopt(self, name: str, process: subprocess.Popen, log_path: Path) -> None:
        self.children.append(Child(name, process, log_path, 10))

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop_all(self) -> None:
        """Newest first: SIGTERM each process group, wait (bounded), then SIGKILL it."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                _signal_group(child.process.pid, signal.SIGTERM)
                try:
                    child.process.wait(child.stop_timeout)
                except subprocess.TimeoutExpired:
                    print(f"  {child.name} did not stop in {child.stop_timeout:g}s: killed")
            _signal_group(child.process.pid, signal.SIGKILL)
            if child.process.poll() is None:
                child.process.wait(5)
        self.children.clear()


def _signal_group(pgid: int, number: int) -> None:
    try:
        os.killpg(pgid, number)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def data_dir_for_up() -> Path:
    """PIPELINES_DATA_DIR, else `.pipelines-data` in the current directory."""
    configured = os.environ.get("PIPELINES_DATA_DIR")
    base = Path(configured).expanduser() if configured else Path.cwd() / ".pipelines-data"
    return base.resolve()


def _child_env(data_dir: Path) -> dict:
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env.update(
        {
            "PIPELINES_DATA_DIR": str(data_dir),
            "DJANGO_SETTINGS_MODULE": env.get("DJANGO_SETTINGS_MODULE", "webapp.settings"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(SOURCE_ROOT), path) if p),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name in ("PIPELINES_API_KEY", "PIPELINES_TASK_ID"):
        env.pop(name, None)
    return env


def _django(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stderr.strip()[-3000:]}")
    return result.stdout


def _write_private(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def credentials(env: dict, data_dir: Path, renew: bool = False) -> dict:
    """The admin login and keys: created once by `bootstrap`, then reused from the data dir."""
    path = data_dir / "credentials.json"
    stored: dict = {}
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except ValueError:
            stored = {}
    if stored.get("api_key") and stored.get("worker_key") and not renew:
        return stored
    # bootstrap makes new keys on every call, so it runs only when we have none that work.
    fresh = json.loads(_django(env, "bootstrap", "--json").strip().splitlines()[-1])
    if not fresh.get("password"):
        fresh["password"] = stored.get("password")
    _write_private(path, fresh)
    return fresh


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def _wait(predicate, timeout: float, supervisor: Supervisor, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        dead = supervisor.first_exited()
        if dead is not None:
            raise RuntimeError(
                f"{dead.name} exited with {dead.process.returncode} while waiting for {what}:\n"
                + _tail(dead.log_path)
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


def _keys_work(url: str, creds: dict) -> bool:
    for key in (creds["api_key"], creds["worker_key"]):
        try:
            Client(ClientConfig(url, key), timeout=10, retry_for=5).get("me/")
        except ApiError as error:
            if error.status in (401, 403):
                return False
            raise
    return True


def _workers_listed(client: Client, expected: int) -> bool:
    try:
        data = client.get("workers/")
    except ApiError:
        return False
    rows = data["results"] if isinstance(data, dict) else data
    mine = [row for row in rows if row.get("hostname") == socket.gethostname() and row["alive"]]
    return len({q for row in mine for q in row["queues"]} & set(STEP_QUEUES)) >= expected


def _raise_interrupt(*_args) -> None:
    raise KeyboardInterrupt


def _private_data_dir(data_dir: Path) -> Path:
    """The data dir and its logs folder, 0700 even if an older version made them readable.

    Everything `up` and its children create from here on is private through the umask
    (0o077: files 0600, folders 0700); the server takes the other bits off whatever older
    files are inside when it starts (webapp/startup.py).
    """
    os.umask(0o077)
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for folder in (data_dir, log_dir):
        os.chmod(folder, 0o700)
    return log_dir


def run_up(args) -> int:
    """Bring everything up, print the URL and login, optionally run the demo, wait for Ctrl-C."""
    data_dir = data_dir_for_up()
    log_dir = _private_data_dir(data_dir)
    env = _child_env(data_dir)
    supervisor = Supervisor(log_dir)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    code = 0
    try:
        code = _bring_up(args, data_dir, env, supervisor)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    except (RuntimeError, EmbeddedRedisError) as error:
        print(f"pipelines up: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave children behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
    print("stopped.", flush=True)
    return code


def _bring_up(args, data_dir: Path, env: dict, supervisor: Supervisor) -> int:
    print(f"data dir: {data_dir}", flush=True)
    _django(env, "migrate", "--noinput", "-v0")
    creds = credentials(env, data_dir)

    if not os.environ.get("CELERY_BROKER_URL"):
        redis = EmbeddedRedis(data_dir, log_path=supervisor.log_dir / "redis.log")
        redis.start(start_new_session=True, preexec_fn=_die_with_parent())
        supervisor.adopt("redis", redis.process, redis.log_path)
        env["CELERY_BROKER_URL"] = redis.url

    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host  # noqa: S104
    url = f"http://{host}:{args.port}"
    cli = [sys.executable, "-m", "pipelines.launcher.cli"]
    supervisor.start("server", [*cli, "server", "--host", args.host, "--port", str(args.port)], env)
    _wait(lambda: _healthy(url), 60, supervisor, f"the server on {url}")
    if not _keys_work(url, creds):
        creds = credentials(env, data_dir, renew=True)  # a new database under old credentials

    supervisor.start("server-worker", [*cli, "serverworker"], env, stop_timeout=15)
    worker_env = {**env, "PIPELINES_API_URL": url, "PIPELINES_API_KEY": creds["worker_key"]}
    for queue in STEP_QUEUES:
        supervisor.start(f"worker-{queue}", [*cli, "worker", "-q", queue], worker_env, 30)
    client = Client(ClientConfig(url, creds["api_key"]), retry_for=5)
    _wait(lambda: _workers_listed(client, len(STEP_QUEUES)), 60, supervisor, "the workers")

    config_file = save_config(url, creds["api_key"])
    password = creds.get("password") or "(unchanged: `manage.py changepassword admin`)"
    print(
        "\npipelines is up\n"
        f"  URL:       {url}/\n"
        f"  login:     {creds.get('username', 'admin')} / {password}\n"
        f"  API key:   {creds['api_key']}\n"
        f"  config:    {config_file} (SDK scripts on this machine use it)\n"
        f"  logs:      {supervisor.log_dir}\n"
        + ("" if args.demo and args.exit_after_demo else "Press Ctrl-C to stop.\n"),
        flush=True,
    )
    if args.demo:
        demo_code = _run_demo(url, creds["api_key"], env, supervisor)
        if args.exit_after_demo:
            return demo_code
    while True:
        dead = supervisor.first_exited()
        if dead is not None:
            print(
                f"{dead.name} exited with {dead.process.returncode}; stopping everything.\n"
                + _tail(dead.log_path),
                file=sys.stderr,
                flush=True,
            )
            return 1
        time.sleep(0.5)


def _run_demo(url: str, api_key: str, env: dict, supervisor: Supervisor) -> int:
    if importlib.util.find_spec("pipelines.launcher.demo") is None:
        print("note: the demo is not available in this version (no pipelines/launcher/demo.py)")
        return 0
    demo_env = {**env, "PIPELINES_API_URL": url, "PIPELINES_API_KEY": api_key}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.launcher.cli", "demo"],
        env=demo_env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent(),
    )
    try:
        while process.poll() is None:
            dead = supervisor.first_exited()
            if dead is not None:
                raise RuntimeError(f"{dead.name} exited during the demo:\n{_tail(dead.log_path)}")
            time.sleep(0.2)
    finally:
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(5)
    print(f"demo finished with exit code {process.returncode}", flush=True)
    return process.returncode
