"""A step on a worker's disk and in its own process group: the script, its environment,
how it is started (limits, the supervisor that forks it), how its end is read."""

import itertools
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ..clearml import runner as clearml_runner
from . import step_supervisor

# Variables a step must not inherit: the worker's own credentials and the server's secrets.
PRIVATE_ENV = {"PIPELINES_API_KEY", "PIPELINES_TASK_ID", "DATABASE_URL", "SECRET_KEY"}


class StepSetupError(RuntimeError):
    """The task's script could not be put on disk."""


def _relative_entry(entry_point: str, fallback: str = "main.py") -> Path:
    """The entry point as a relative path that cannot leave the working dir."""
    path = Path(entry_point or fallback)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        path = Path(path.name or fallback)
    return path


def _git(args: list[str], cwd: Path, stdin: str | None = None, timeout: float = 600) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    command = ["git", "-c", "protocol.ext.allow=never", *args]
    try:
        result = subprocess.run(
            command, cwd=cwd, input=stdin, capture_output=True, text=True, env=env, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StepSetupError(f"git {args[0]} failed: {error}") from error
    if result.returncode != 0:
        raise StepSetupError(f"git {args[0]} failed: {result.stderr.strip()[-2000:]}")


def materialise(script: dict, base_dir: str | None) -> tuple[Path, Path, str]:
    """Put a task's script in a fresh directory: (work dir, cwd, entry relative to cwd).

    The stored code snapshot wins; a git repository and commit (plus the uncommitted diff)
    are used only when the task has no code.
    """
    workdir = Path(tempfile.mkdtemp(prefix="pipelines-step-", dir=base_dir))
    code = script.get("code") or ""
    try:
        if code:
            entry = workdir / _relative_entry(script.get("entry_point", ""))
            entry.parent.mkdir(parents=True, exist_ok=True)
            entry.write_text(code, encoding="utf-8")
            return workdir, entry.parent, entry.name
        repository, commit = script.get("repository") or "", script.get("commit") or ""
        if not (repository and commit):
            raise StepSetupError("the task has neither script code nor a git repository+commit")
        checkout = workdir / "repo"
        _git(["clone", "--quiet", "--no-checkout", "--", repository, str(checkout)], workdir)
        _git(["checkout", "--quiet", commit], checkout)
        if script.get("diff"):
            diff = script["diff"] if script["diff"].endswith("\n") else script["diff"] + "\n"
            _git(["apply", "--whitespace=nowarn", "-"], checkout, stdin=diff)
        relative = script.get("repo_entry_point") or script.get("entry_point", "")
        entry = checkout / _relative_entry(relative)
        if not entry.is_file():
            raise StepSetupError(f"{relative!r} is not in {repository} at {commit}")
        return workdir, entry.parent, entry.name
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def step_env(api_url: str, task_key: str, task_id: str) -> dict:
    """The step's environment: the worker's, minus its credentials, plus the task's own key."""
    env = {
        k: v for k, v in os.environ.items() if k not in PRIVATE_ENV and not k.startswith("CELERY_")
    }
    env.update(
        {
            "PIPELINES_API_URL": api_url,
            "PIPELINES_API_KEY": task_key,
            "PIPELINES_TASK_ID": task_id,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def step_python(task: dict) -> str:
    """The interpreter for a step: the worker's own, except for tasks created by the official
    `clearml` SDK, which need an environment with `clearml` (and their own packages) in it:
    PIPELINES_CLEARML_PYTHON names it, as `--python` does for pipelines.clearml.runner."""
    if clearml_runner.is_clearml_task(task):
        return os.environ.get("PIPELINES_CLEARML_PYTHON") or sys.executable
    return sys.executable


def clearml_refusal(task: dict) -> str | None:
    """Why this worker will not run `task`: a ClearML task needs a configured ClearML
    interpreter (the worker's own has no `clearml` package, e.g. under `pipelines up`)."""
    if clearml_runner.is_clearml_task(task) and not os.environ.get("PIPELINES_CLEARML_PYTHON"):
        return (
            "a ClearML task, and this worker has no ClearML interpreter: start the worker "
            "with PIPELINES_CLEARML_PYTHON set to a Python that has the clearml package "
            "(see docs/clearml.md)"
        )
    return None


# ---------------------------------------------------------------- step resource limits
# Set by the worker's environment, applied to the step only (in its process, after the fork
# and before the exec), so a step that hits one fails while the worker is untouched.
# Unset or empty means no limit. RLIMIT_NPROC counts every process of the user and is not
# enforced for root; run workers as an unprivileged user for it to bite.
STEP_RLIMITS = {
    "PIPELINES_STEP_RLIMIT_AS_MB": ("RLIMIT_AS", 1024 * 1024),
    "PIPELINES_STEP_RLIMIT_FSIZE_MB": ("RLIMIT_FSIZE", 1024 * 1024),
    "PIPELINES_STEP_RLIMIT_NOFILE": ("RLIMIT_NOFILE", 1),
    "PIPELINES_STEP_RLIMIT_NPROC": ("RLIMIT_NPROC", 1),
    "PIPELINES_STEP_RLIMIT_CPU_SECONDS": ("RLIMIT_CPU", 1),
}
_LIMIT_SIGNALS = {"SIGXFSZ": "file size limit exceeded", "SIGXCPU": "CPU time limit exceeded"}


def step_rlimits(environ=None) -> list[tuple[int, int]]:
    """(resource, value) for each PIPELINES_STEP_RLIMIT_* set; ValueError for a bad value."""
    environ = os.environ if environ is None else environ
    limits = []
    for var, (name, scale) in STEP_RLIMITS.items():
        raw = environ.get(var, "").strip()
        if not raw:
            continue
        try:
            value = int(raw) * scale
        except ValueError:
            value = 0
        if value <= 0:
            raise ValueError(f"{var} must be a positive integer, not {raw!r}")
        kind = getattr(resource, name)
        hard = resource.getrlimit(kind)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        limits.append((kind, value))
    return limits


# ---------------------------------------------------------------- starting and watching steps
# Steps are forked by the worker's step supervisor (step_supervisor.py: why, and how a killed
# worker still takes its steps down, is explained there). This is the worker's side of it.
SUPERVISOR_SCRIPT = Path(__file__).with_name("step_supervisor.py")


class StepProcess:
    """A running step: its pid (which is also its process group), its output, its end."""

    def __init__(self, supervisor: "StepSupervisor", pid: int):
        self.pid = pid
        self.stdout = None
        self.stderr = None
        self.returncode: int | None = None
        # What the step used, from the supervisor's reap (step_supervisor.step_usage).
        self.resources: dict = {}
        self._supervisor = supervisor
        self._exited = threading.Event()
        self._owner: socket.socket | None = None  # the connection of the supervisor that forked it

    def has_exited(self) -> bool:
        return self._exited.is_set()

    def wait(self, timeout: float | None = None) -> int | None:
        """The Popen-style return code once the step and its group are gone (None: not yet)."""
        self._exited.wait(timeout)
        return self.returncode

    def signal_group(self, number: int) -> None:
        """Signal the step's whole process group (nothing once it has been reaped)."""
        self._supervisor.signal(self.pid, number)

    def _ended(self, returncode: int, resources: dict | None = None) -> None:
        self.returncode = returncode
        self.resources = dict(resources or {})
        self._exited.set()


class StepSupervisor:
    """The worker's handle on its step supervisor process, started with the first step."""

    def __init__(self, python: str = sys.executable):
        self.python = python
        self._lock = threading.Lock()  # starting the supervisor; sending to it
        self._process: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, list] = {}  # spawn id -> [answered Event, reply]
        self._steps: dict[int, StepProcess] = {}

    def spawn(self, argv: list[str], cwd: Path | str, env: dict) -> StepProcess:
        """Start `argv` as a step; OSError if it could not be started."""
        try:
            limits, problem = step_rlimits(), None
        except ValueError as error:
            limits, problem = [], f"cannot apply the step resource limits: {error}\n"
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        request_id = next(self._ids)
        waiter = [threading.Event(), None]
        self._pending[request_id] = waiter
        message = {
            "op": "spawn",
            "id": request_id,
            "argv": [str(part) for part in argv],
            "cwd": str(cwd),
            "env": env,
            "limits": limits,
            "problem": problem,
        }
        try:
            with self._lock:
                sock = self._ensure_running()
                step_supervisor.send(sock, message, [out_write, err_write])
        except OSError as error:
            self._pending.pop(request_id, None)
            for fd in (out_read, err_read):
                os.close(fd)
            raise OSError(f"the step supervisor is unreachable: {error}") from error
        finally:
            for fd in (out_write, err_write):
                os.close(fd)
        answered = waiter[0].wait(60)
        self._pending.pop(request_id, None)
        reply = waiter[1] if answered else {"error": "the step supervisor did not answer"}
        if "pid" not in reply:
            for fd in (out_read, err_read):
                os.close(fd)
            raise OSError(reply.get("error") or "the step could not be started")
        process = reply["process"]
        process.stdout, process.stderr = open(out_read, "rb"), open(err_read, "rb")  # noqa: SIM115
        return process

    def signal(self, pid: int, number: int) -> None:
        try:
            with self._lock:
                if self._sock is not None:
                    step_supervisor.send(
                        self._sock, {"op": "signal", "pid": pid, "signal": int(number)}
                    )
        except OSError:
            pass  # the supervisor is gone; its reader has already ended the step

    def close(self) -> None:
        """Stop the supervisor: it SIGKILLs any step group still running, then exits."""
        with self._lock:
            sock, process = self._sock, self._process
            self._sock = None
        if sock is not None:
            # shutdown() before close(): our reader thread is blocked in recv() on this
            # socket, which keeps it open past a bare close(), so the supervisor would never
            # see EOF and we would wait out the timeout below.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if process is not None:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()

    def _ensure_running(self) -> socket.socket:
        if self._sock is not None and self._process is not None and self._process.poll() is None:
            return self._sock
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._process = subprocess.Popen(
                [self.python, "-I", "-S", str(SUPERVISOR_SCRIPT)],
                stdin=theirs,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # out of reach of signals sent to the worker's group
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        reader = threading.Thread(
            target=self._read, args=(ours,), name="step-supervisor", daemon=True
        )
        reader.start()
        return ours

    def _read(self, sock: socket.socket) -> None:
        """Answers and exits from one supervisor, until it goes away."""
        try:
            while True:
                message, _fds = step_supervisor.receive(sock)
                if message["op"] == "spawned":
                    waiter = self._pending.get(message["id"])
                    if "pid" in message:
                        # Registered here, before anyone waits on it: its exit may come next.
                        process = StepProcess(self, message["pid"])
                        process._owner = sock
                        self._steps[process.pid] = process
                        message["process"] = process
                    if waiter is not None:
                        waiter[1] = message
                        waiter[0].set()
                elif message["op"] == "exited":
                    process = self._steps.pop(message["pid"], None)
                    if process is not None:
                        process._ended(message["returncode"], message.get("resources"))
        except (EOFError, OSError, ValueError):
            pass
        # The supervisor died: its steps' leaders died with it; take down what they left.
        with self._lock:
            if self._sock is sock:
                self._sock = None
        for pid, process in list(self._steps.items()):
            if process._owner is sock:
                killpg(pid, signal.SIGKILL)
                self._steps.pop(pid)._ended(-signal.SIGKILL)
        for waiter in list(self._pending.values()):
            waiter[1] = {"error": "the step supervisor exited"}
            waiter[0].set()


def killpg(pgid: int, number: int) -> None:
    """Signal a whole process group; one that is already gone is fine."""
    try:
        os.killpg(pgid, number)
    except (ProcessLookupError, PermissionError):
        pass


def describe_exit(code: int) -> str:
    """`exit code N` or `killed by signal S (NAME)` for a Popen return code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "unknown"
    if name in _LIMIT_SIGNALS:
        return f"killed by signal {-code} ({name}: {_LIMIT_SIGNALS[name]})"
    return f"killed by signal {-code} ({name})"
