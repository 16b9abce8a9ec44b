"""A step on a worker's disk and in its own process group: the script, its environment,
the guard that leads its group, and how its end is read."""

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


# ---------------------------------------------------------------- step resource limits
# Set by the worker's environment, applied by the guard to the step only (after its fork,
# before exec), so a step that hits one fails while the guard and the worker are untouched.
# Unset or empty means no limit. RLIMIT_NPROC counts every process of the user and is not
# enforced for root; run workers as an unprivileged user for it to bite.
STEP_RLIMITS = {
    "PIPELINES_STEP_RLIMIT_AS_MB": ("RLIMIT_AS", 1024 * 1024),
    "PIPELINES_STEP_RLIMIT_FSIZE_MB": ("RLIMIT_FSIZE", 1024 * 1024),
    "PIPELINES_STEP_RLIMIT_NOFILE": ("RLIMIT_NOFILE", 1),
    "PIPELINES_STEP_RLIMIT_NPROC": ("RLIMIT_NPROC", 1),
    "PIPELINES_STEP_RLIMIT_CPU_SECONDS": ("RLIMIT_CPU", 1),
}
_STEP_RLIMITS_CODE = f"""
def apply_rlimits():
    import resource
    for var, (name, scale) in {STEP_RLIMITS!r}.items():
        raw = os.environ.get(var, "").strip()
        if not raw:
            continue
        value = int(raw) * scale
        if value <= 0:
            raise ValueError(var + " must be a positive integer")
        kind = getattr(resource, name)
        hard = resource.getrlimit(kind)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(kind, (value, value))
"""
_LIMIT_SIGNALS = {"SIGXFSZ": "file size limit exceeded", "SIGXCPU": "CPU time limit exceeded"}


# The step's process-group leader. It stays between the worker and the step so that a worker
# killed with SIGKILL still takes its step down: the guard sees it has been re-parented and
# kills the whole group. It ignores the SIGTERM the worker sends to the group (the step gets
# it) and exits as the step did, so the worker reads the step's own exit code or signal.
_GUARD = """
import os, signal, sys, time
parent, argv = int(sys.argv[1]), sys.argv[2:]
caught = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
for number in caught:
    signal.signal(number, signal.SIG_IGN)
pid = os.fork()
if pid == 0:
    for number in (*caught, signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)
    try:
        apply_rlimits()
    except (ValueError, OSError) as error:
        os.write(2, f"cannot apply the step resource limits: {error}\\n".encode())
        os._exit(126)
    try:
        os.execv(argv[0], argv)
    except OSError as error:
        os.write(2, f"cannot run {argv[0]}: {error}\\n".encode())
    os._exit(127)
# A pidfd wakes us the moment the step exits (no polling delay); every 0.1 s we also check
# that the worker is still our parent.
try:
    import select
    pidfd = os.pidfd_open(pid)
except (AttributeError, OSError, ImportError):
    pidfd = None
while True:
    if pidfd is not None:
        select.select([pidfd], [], [], 0.1)
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if os.getppid() != parent:
        os.killpg(0, signal.SIGKILL)
    if pidfd is None:
        time.sleep(0.1)
if os.WIFSIGNALED(status):
    number = os.WTERMSIG(status)
    if number not in (signal.SIGKILL, signal.SIGSTOP):  # these two cannot be handled
        signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
    os._exit(128 + number)
os._exit(os.waitstatus_to_exitcode(status))
"""


_GUARD = _STEP_RLIMITS_CODE + _GUARD


def guarded_command(command: list[str]) -> list[str]:
    """`command` run under the guard, which watches this (the worker's) process."""
    return [sys.executable, "-I", "-S", "-c", _GUARD, str(os.getpid()), *command]


def wait_for_exit(pid: int, timeout: float) -> None:
    """Return when `pid` exits or after `timeout`: at once on exit where pidfds exist."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        time.sleep(timeout)
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


def killpg(pgid: int, number: int) -> None:
    """Signal a whole process group; one that is already gone is fine."""
    try:
        os.killpg(pgid, number)
    except (ProcessLookupError, PermissionError):
        pass


def has_exited(pid: int) -> bool:
    """True once `pid` has exited, without reaping it: its group id stays reserved meanwhile."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


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
