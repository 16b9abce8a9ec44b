"""`pipelines up`: migrations, the embedded broker, the web server, the server worker and a
step worker for `default` and one for `services`, all on this machine; Ctrl-C stops them all.

Every child runs in its own session, so a Ctrl-C in the terminal reaches `up` alone, which
then stops the children in order (step workers first, so they can report, the broker last).
On Linux each child also gets SIGTERM if `up` itself dies, so nothing is left behind.

Once everything is up, a child that exits is restarted, after a pause that doubles with
each quick exit in a row (1 s up to 30 s), while the others keep running: a step whose
worker died is retried by the server, and every other process reconnects by itself. A child
that keeps exiting soon after it starts is reported as crash-looping, with the last lines of
its log, and still retried: what breaks it is often outside it (a broker or database that
is away, a revoked key, a full disk) and starts working again once that is fixed, without
restarting `up` and the steps it runs.
"""

import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..client import ApiError, Client
from ..config import ClientConfig, config_path, save_config
from .embedded_redis import EmbeddedRedis, EmbeddedRedisError

SOURCE_ROOT = Path(__file__).resolve().parents[2]
# The `services` queue runs controllers that hold their slot for a whole pipeline, so it gets
# a worker of its own instead of sharing one with `default`.
STEP_QUEUES = ("default", "services")
# Restarting a child that exited: the first pause, and the longest after quick exits.
BACKOFF_START = 1.0
BACKOFF_MAX = 30.0
# A child that ran this long before it exited starts over: its exit was not a crash loop.
STABLE_SECONDS = 30.0
# This many quick exits in a row make a crash loop, reported with the child's last lines.
CRASH_LOOP_EXITS = 3
# Stopping goes by stage, each stage signalled at once: step workers, server worker, web
# server, broker.
BROKER, SERVER, SERVER_WORKER, STEP_WORKERS = range(4)


@dataclass
class Child:
    name: str
    launch: Callable[[], subprocess.Popen]
    log_path: Path
    stop_timeout: float
    stage: int
    process: subprocess.Popen | None = None
    started: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None


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


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Starts children in their own sessions with a log file each, restarts those that exit,
    and stops them all, group-wide, stage by stage."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.children: list[Child] = []
        self.hurry = threading.Event()

    def say(self, text: str, error: bool = False) -> None:
        """To up's output and to `{log dir}/up.log`."""
        print(text, file=sys.stderr if error else sys.stdout, flush=True)
        self.note(text)

    def note(self, text: str) -> None:
        """To `{log dir}/up.log` only: how a stop went, for whoever reads up's logs."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        try:
            with open(self.log_dir / "up.log", "a") as log:
                log.write("".join(f"[{stamp}] {line}\n" for line in text.splitlines()))
        except OSError:
            pass

    def start(
        self, name: str, argv: list[str], env: dict, stop_timeout: float = 10, stage: int = 0
    ) -> Child:
        log_path = self.log_dir / f"{name}.log"

        def launch() -> subprocess.Popen:
            with open(log_path, "ab") as log:
                return subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(),
                )

        return self.adopt(name, launch, log_path, stop_timeout, stage)

    def adopt(
        self,
        name: str,
        launch: Callable[[], subprocess.Popen],
        log_path: Path,
        stop_timeout: float = 10,
        stage: int = 0,
    ) -> Child:
        """Supervise a child that `launch` starts (and starts again after it exits)."""
        child = Child(name, launch, log_path, stop_timeout, stage)
        self.children.append(child)
        self._launch(child)
        return child

    def _launch(self, child: Child) -> None:
        child.process = child.launch()
        child.started = time.monotonic()
        child.restart_at = None
        self.say(f"started {child.name} (pid {child.process.pid})")

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def supervise(self) -> None:
        """Restart what exited, once its pause is over. Called every half second."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._restart(child)
            elif child.process.poll() is not None:
                self._exited(child, now)
            elif child.quick_exits and now - child.started >= STABLE_SECONDS:
                if child.quick_exits >= CRASH_LOOP_EXITS:
                    self.say(f"{child.name} has stayed up for {STABLE_SECONDS:g}s: running again")
                child.quick_exits = 0

    def _exited(self, child: Child, now: float) -> None:
        ran = now - child.started
        child.quick_exits = child.quick_exits + 1 if ran < STABLE_SECONDS else 0
        pause = min(BACKOFF_MAX, BACKOFF_START * 2 ** max(0, child.quick_exits - 1))
        child.restart_at = now + pause
        self.say(
            f"{child.name} (pid {child.process.pid}) exited with "
            f"{describe_exit(child.process.returncode)} after {ran:.0f}s; "
            f"restarting it in {pause:g}s"
        )
        if child.quick_exits >= CRASH_LOOP_EXITS:
            self.say(
                f"{child.name} is crash-looping: {child.quick_exits} exits in a row, each "
                f"within {STABLE_SECONDS:g}s of its start. It is retried every "
                f"{BACKOFF_MAX:g}s at most; Ctrl-C stops everything. The end of "
                f"{child.log_path}:\n" + _indent(_tail(child.log_path, 20)),
                error=True,
            )

    def _restart(self, child: Child) -> None:
        try:
            self._launch(child)
        except (OSError, EmbeddedRedisError) as error:
            child.started = time.monotonic()
            child.quick_exits += 1
            pause = min(BACKOFF_MAX, BACKOFF_START * 2 ** max(0, child.quick_exits - 1))
            child.restart_at = child.started + pause
            self.say(f"could not restart {child.name}: {error}; again in {pause:g}s", error=True)

    def stop_all(self) -> None:
        """Stage by stage, step workers first and the broker last: SIGTERM each process
        group of the stage, wait (bounded), then SIGKILL it. A second Ctrl-C (`hurry`)
        signals the children still stopping again: step workers then hand their steps back
        at once."""
        for stage in sorted({c.stage for c in self.children}, reverse=True):
            group = [c for c in self.children if c.stage == stage and c.process is not None]
            running = [c for c in group if c.process.poll() is None]
            if running:
                self.note(f"stopping {', '.join(c.name for c in running)}")
            for child in running:
                _signal_group(child.process.pid, signal.SIGTERM)
            began = time.monotonic()
            for child in running:
                self._wait_stopped(child)
                if child.process.poll() is not None:
                    self.note(f"  {child.name} stopped after {time.monotonic() - began:.1f}s")
            # Only those running until now: the pid of one that exited earlier (waiting to be
            # restarted) was released long ago and may lead someone else's group by now.
            for child in running:
                _signal_group(child.process.pid, signal.SIGKILL)
                if child.process.poll() is None:
                    child.process.wait(5)
        self.children.clear()

    def _wait_stopped(self, child: Child) -> None:
        deadline = time.monotonic() + child.stop_timeout
        hurried = False
        while child.process.poll() is None:
            if self.hurry.is_set() and not hurried:
                hurried = True
                _signal_group(child.process.pid, signal.SIGTERM)
            if time.monotonic() > deadline:
                self.say(f"  {child.name} did not stop in {child.stop_timeout:g}s: killed")
                return
            time.sleep(0.1)


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


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


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

    # A second Ctrl-C must not cut the shutdown short and leave children behind: it only
    # hurries the step workers (they hand their running steps back at once).
    def hurry(*_args) -> None:
        if not supervisor.hurry.is_set():
            supervisor.hurry.set()
            print("stopping now: running steps are handed back", flush=True)

    def shutdown_signals_hurry() -> None:
        signal.signal(signal.SIGINT, hurry)
        signal.signal(signal.SIGTERM, hurry)

    code = 0
    try:
        code = _bring_up(args, data_dir, env, supervisor)
    except KeyboardInterrupt:
        # first, so that a second signal arriving while this prints (a quick second Ctrl-C,
        # or `make run` passing its own SIGTERM on) hurries the shutdown, not aborts it
        shutdown_signals_hurry()
        print("\nstopping…", flush=True)
    except (RuntimeError, EmbeddedRedisError) as error:  # PortInUse too
        shutdown_signals_hurry()
        print(f"pipelines up: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        shutdown_signals_hurry()
        supervisor.stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
    print("stopped.", flush=True)
    return code


class PortInUse(RuntimeError):
    pass


def check_port_free(host: str, port: int) -> None:
    """Refuse at once to start on a port something already listens on: a server there would
    answer the health check for ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the web server binds: a port whose old connections linger is free to take.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(
                f"port {port} is in use ({error.strerror.lower()} on {host or '*'}): "
                "stop what listens there, or start on another port "
                "(`pipelines up --port 8100`, `make run PORT=8100`)"
            ) from error


def client_config(url: str, api_key: str) -> str:
    """Point the SDK on this machine at this server, unless its config names another one.

    The file is written when it is missing or already names this URL (the key may be new);
    one naming another server (a second instance, a team server) is left as it is, since
    every SDK script of this user would otherwise change servers. Returns what to print.
    """
    path = config_path()
    current = ""
    if path.exists():
        try:
            current = str(json.loads(path.read_text()).get("api_url") or "")
        except (OSError, ValueError, AttributeError):
            return (
                f"{path} is left as it is (it cannot be read as a config); "
                f"`pipelines login --url {url} --key <the API key>` rewrites it"
            )
    if current and current.rstrip("/") != url.rstrip("/"):
        return (
            f"{path} is left as it is: it points at {current}.\n"
            f"               To use this server from SDK scripts here, run "
            f"`pipelines login --url {url} --key <the API key>`,\n"
            "               or set PIPELINES_API_URL and PIPELINES_API_KEY."
        )
    save_config(url, api_key)
    return f"{path} (SDK scripts on this machine use it)"


def _bring_up(args, data_dir: Path, env: dict, supervisor: Supervisor) -> int:
    check_port_free(args.host, args.port)
    print(f"data dir: {data_dir}", flush=True)
    _django(env, "migrate", "--noinput", "-v0")
    creds = credentials(env, data_dir)

    if not os.environ.get("CELERY_BROKER_URL"):
        redis = EmbeddedRedis(data_dir, log_path=supervisor.log_dir / "redis.log")

        def launch_redis() -> subprocess.Popen:
            redis.start(start_new_session=True, preexec_fn=_die_with_parent())
            return redis.process

        supervisor.adopt("redis", launch_redis, redis.log_path, stage=BROKER)
        env["CELERY_BROKER_URL"] = redis.url

    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host  # noqa: S104
    url = f"http://{host}:{args.port}"
    cli = [sys.executable, "-m", "pipelines.launcher.cli"]
    server = [*cli, "server", "--host", args.host, "--port", str(args.port)]
    supervisor.start("server", server, env, stage=SERVER)
    _wait(lambda: _healthy(url), 60, supervisor, f"the server on {url}")
    if not _keys_work(url, creds):
        creds = credentials(env, data_dir, renew=True)  # a new database under old credentials

    supervisor.start("server-worker", [*cli, "serverworker"], env, 15, stage=SERVER_WORKER)
    worker_env = {**env, "PIPELINES_API_URL": url, "PIPELINES_API_KEY": creds["worker_key"]}
    for queue in STEP_QUEUES:
        argv = [*cli, "worker", "-q", queue]
        supervisor.start(
            f"worker-{queue}", argv, worker_env, _worker_stop_timeout(env), STEP_WORKERS
        )
    client = Client(ClientConfig(url, creds["api_key"]), retry_for=5)
    _wait(lambda: _workers_listed(client, len(STEP_QUEUES)), 60, supervisor, "the workers")

    config = client_config(url, creds["api_key"])
    password = creds.get("password") or "(unchanged: `manage.py changepassword admin`)"
    print(
        "\npipelines is up\n"
        f"  URL:         {url}/\n"
        f"  login:       {creds.get('username', 'admin')} / {password}\n"
        f"  API key:     {creds['api_key']}\n"
        f"  credentials: {data_dir / 'credentials.json'}\n"
        f"  config:      {config}\n"
        f"  logs:        {supervisor.log_dir}\n"
        + ("" if args.demo and args.exit_after_demo else "Press Ctrl-C to stop.\n"),
        flush=True,
    )
    if args.demo:
        demo_code = _run_demo(url, creds["api_key"], env, supervisor)
        if args.exit_after_demo:
            return demo_code
    while True:
        supervisor.supervise()
        time.sleep(0.5)


def _worker_stop_timeout(env: dict) -> float:
    """Long enough for a stopping step worker to let its step finish, or hand it back."""

    def seconds(name: str, default: float) -> float:
        try:
            return max(0.0, float(env.get(name) or default))
        except ValueError:
            return default

    grace = seconds("PIPELINES_SHUTDOWN_GRACE_SECONDS", 20.0)
    return grace + seconds("PIPELINES_KILL_GRACE_SECONDS", 3.0) + 15.0


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
            supervisor.supervise()
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
