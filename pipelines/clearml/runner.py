"""Runs tasks created by the official `clearml` SDK: `python -m pipelines.clearml.runner`.

A small stand-in for `clearml-agent daemon`, talking only ClearML's protocol to our server
(/clearml-api/), with no Celery and no Django. It follows the SDK's own LocalClearmlJob
recipe: pull a task from a queue (`queues.get_next_task`), put its script on disk, run it
with CLEARML_TASK_ID set, forward its console as log events (an SDK running remotely sends
none itself), stop it when the task is stopped, and report `completed` or `failed` from its
exit code (an SDK running remotely leaves that to its runner). A pipeline controller
occupies its runner slot until its pipeline ends, so run one runner for `services`
(controllers) and another for `default` (steps):

    python -m pipelines.clearml.runner --queue services
    python -m pipelines.clearml.runner --queue default --concurrency 2

The server and key are our own client configuration (PIPELINES_API_URL and PIPELINES_API_KEY,
or `pipelines login`), as for `pipelines worker`; all HTTP goes through pipelines.client. Each
task gets the CLEARML_* variables derived from them (task_env), as clearml-agent hands its
credentials to the task. Use a worker key: a task's script acts with these credentials.

Our Celery step worker can run such tasks too: `is_clearml_task()` tells them apart and
`task_env()` is the environment to add to the step's (see docs/clearml.md).
"""

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..client import ApiError, Client
from ..config import ConfigurationError, load_config

log = logging.getLogger("pipelines.clearml.runner")

CLEARML_SYSTEM_TAG = "clearml"
# Variables a task must not inherit: they would make its SDK think it is a sub-process of
# another task (CLEARML_PROC_MASTER_ID) or act as another task.
PRIVATE_ENV = (
    "CLEARML_PROC_MASTER_ID",
    "TRAINS_PROC_MASTER_ID",
    "CLEARML_TASK_ID",
    "PIPELINES_TASK_ID",
    "PIPELINES_API_KEY",
)


def is_clearml_task(task: dict) -> bool:
    """True for a task created through the ClearML protocol (our REST API's task JSON)."""
    return CLEARML_SYSTEM_TAG in (task.get("system_tags") or [])


def split_key(api_key: str) -> tuple[str, str]:
    """Our API key `pk_<prefix>_<secret>` as ClearML's (access key, secret key)."""
    _, prefix, secret = api_key.split("_", 2)
    return f"pk_{prefix}", secret


def task_env(api_url: str, api_key: str, task_id: str) -> dict:
    """What the `clearml` SDK in a step needs to attach to its task on our server."""
    access, secret = split_key(api_key)
    base = api_url.rstrip("/")
    return {
        "CLEARML_TASK_ID": task_id,
        "CLEARML_API_HOST": f"{base}/clearml-api",
        "CLEARML_FILES_HOST": f"{base}/clearml-files",
        "CLEARML_WEB_HOST": base,
        "CLEARML_API_ACCESS_KEY": access,
        "CLEARML_API_SECRET_KEY": secret,
        # The runner forwards the console; the SDK must not send it a second time.
        "CLEARML_LOG_TASK_TO_BACKEND": "0",
    }


class CompatError(RuntimeError):
    def __init__(self, code: int, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class Session:
    """ClearML's protocol over our one HTTP client (pipelines.client): our API key goes as
    the bearer (the server accepts it in place of a ClearML token), answers are unwrapped
    from ClearML's envelope, errors raised as CompatError."""

    def __init__(self, client: Client, worker: str):
        self.client = client
        self.base = f"{client.base}/clearml-api"
        self.worker = worker

    def call(self, endpoint: str, body=None, **fields):
        try:
            payload = self.client.request(
                "POST",
                f"{self.base}/{endpoint}",
                json_body=body if body is not None else fields,
                headers={"X-ClearML-Worker": self.worker},
            )
        except ApiError as error:
            meta = (error.body or {}).get("meta") if isinstance(error.body, dict) else None
            message = (meta or {}).get("result_msg") or error.detail
            raise CompatError(error.status, f"{endpoint}: {message}") from error
        if not isinstance(payload, dict) or "meta" not in payload:
            raise CompatError(0, f"{endpoint}: not a ClearML answer")
        return payload.get("data") or {}

    def send_events(self, events: list) -> None:
        # A JSON array is accepted as a batch, like the SDK's JSON-lines body.
        if events:
            self.call("events.add_batch", events)


class LogShipper:
    """Batches a task's console lines into `log` events, flushing about once a second."""

    def __init__(self, session: Session, task_id: str, worker: str):
        self.session, self.task_id, self.worker = session, task_id, worker
        self.pending: list[dict] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def line(self, text: str, level: str = "info") -> None:
        event = {
            "task": self.task_id,
            "timestamp": int(time.time() * 1000),
            "type": "log",
            "level": level,
            "worker": self.worker,
            "msg": text.rstrip("\n"),
        }
        with self.lock:
            self.pending.append(event)

    def _loop(self) -> None:
        while not self.done.wait(1.0):
            self.flush()

    def flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
        try:
            self.session.send_events(batch)
        except CompatError as error:
            log.warning(
                "could not send %d console lines of %s: %s", len(batch), self.task_id, error
            )

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.flush()


class SetupError(RuntimeError):
    pass


def _relative(value: str, fallback: str) -> Path:
    """A relative path that stays inside the work dir (a task's script names it)."""
    path = Path(value or fallback)
    if path.is_absolute() or ".." in path.parts:
        path = Path(path.name or fallback)
    return path


def materialise(script: dict, base_dir: str | None) -> tuple[Path, Path, str]:
    """(work dir, cwd, entry point) for a ClearML task's script, as LocalClearmlJob does: a
    standalone script arrives whole in `diff`; otherwise clone the repository and apply it."""
    workdir = Path(tempfile.mkdtemp(prefix="clearml-task-", dir=base_dir))
    diff = script.get("diff") or ""
    entry = _relative(script.get("entry_point") or "", "main.py")
    try:
        if script.get("repository"):
            root = workdir / "repo"
            ref = script.get("version_num") or script.get("tag") or script.get("branch") or ""
            _git(["clone", "--quiet", "--", script["repository"], str(root)], workdir)
            if ref:
                _git(["checkout", "--quiet", ref], root)
            if diff.strip():
                _git(["apply", "--whitespace=nowarn", "-"], root, stdin=diff.rstrip("\n") + "\n")
        elif diff.strip() and not diff.lstrip().startswith("diff "):
            root = workdir
            target = root / _relative(script.get("working_dir") or ".", ".") / entry
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(diff, encoding="utf-8")
        else:
            raise SetupError("the task has neither a standalone script nor a repository")
        cwd = root / _relative(script.get("working_dir") or ".", ".")
        if not (cwd / entry).is_file():
            raise SetupError(f"entry point {entry} is not in the task's code")
        return workdir, cwd, str(entry)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _git(args: list[str], cwd: Path, stdin: str | None = None) -> None:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        result = subprocess.run(
            ["git", "-c", "protocol.ext.allow=never", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SetupError(f"git {args[0]} failed: {error}") from error
    if result.returncode != 0:
        raise SetupError(f"git {args[0]} failed: {result.stderr.strip()[-2000:]}")


def _killpg(pid: int, number: int) -> None:
    try:
        os.killpg(pid, number)
    except (ProcessLookupError, PermissionError):
        pass


class Runner:
    def __init__(self, session: Session, args):
        self.session, self.args = session, args
        self.name = session.worker
        self.stopping = threading.Event()
        self.queue_ids: list[str] = []
        self.running: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------ the daemon

    def serve(self) -> None:
        for name in self.args.queue:
            found = self.session.call("queues.get_all", name=f"^{name}$", only_fields=["id"])
            if not found.get("queues"):
                raise SystemExit(f"clearml_runner: no queue named {name!r} on the server")
            self.queue_ids.append(found["queues"][0]["id"])
        self.session.call("workers.register", worker=self.name, queues=self.queue_ids)
        log.info("runner %s serves %s", self.name, ", ".join(self.args.queue))
        print(f"clearml runner {self.name} serves {', '.join(self.args.queue)}", flush=True)
        slots = [
            threading.Thread(target=self._slot, name=f"slot-{i}", daemon=True)
            for i in range(max(1, self.args.concurrency))
        ]
        for slot in slots:
            slot.start()
        while not self.stopping.wait(30):
            try:
                self.session.call(
                    "workers.status_report",
                    worker=self.name,
                    queues=self.queue_ids,
                    timestamp=int(time.time() * 1000),
                    task=next(iter(self.running), None),
                )
            except CompatError as error:
                log.warning("status report failed: %s", error)
        for slot in slots:
            slot.join(self.args.kill_grace + 15)
        try:
            self.session.call("workers.unregister", worker=self.name)
        except CompatError:
            pass

    def _slot(self) -> None:
        while not self.stopping.is_set():
            task_id = None
            for queue_id in self.queue_ids:
                try:
                    entry = self.session.call("queues.get_next_task", queue=queue_id)
                except CompatError as error:
                    log.warning("polling the queue failed: %s", error)
                    break
                task_id = (entry.get("entry") or {}).get("task")
                if task_id:
                    break
            if task_id:
                try:
                    self.run_task(task_id)
                except Exception:  # noqa: BLE001 - one broken task must not end the runner
                    log.exception("running task %s failed", task_id)
            else:
                self.stopping.wait(self.args.poll)

    # ------------------------------------------------------------ one task

    def run_task(self, task_id: str) -> None:
        call = self.session.call
        call("tasks.started", task=task_id, force=True, status_reason="pulled by runner")
        shipper = LogShipper(self.session, task_id, self.name)
        shipper.line(f"task {task_id} pulled by ClearML runner {self.name}")
        task = call("tasks.get_by_id", task=task_id)["task"]
        try:
            workdir, cwd, entry = materialise(task.get("script") or {}, self.args.work_dir)
        except SetupError as error:
            shipper.line(f"could not prepare the task's code: {error}", "error")
            shipper.close()
            self._report(task_id, "tasks.failed", f"could not prepare the code: {error}")
            return
        try:
            code, aborted = self._execute(task_id, cwd, entry, shipper)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        shipper.line(f"process ended with exit code {code}")
        # Every console line reaches the server before the status changes.
        shipper.close()
        if aborted:
            self._report(task_id, "tasks.stopped", "aborted", force=True)
        elif code == 0:
            self._report(task_id, "tasks.completed", "worker execution done")
        else:
            self._report(task_id, "tasks.failed", f"worker execution exit code {code}")

    def _execute(self, task_id: str, cwd: Path, entry: str, shipper: LogShipper):
        env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
        config = self.session.client.config
        env.update(task_env(config.api_url, config.api_key, task_id))
        env.update({"CLEARML_WORKER_ID": self.name, "PYTHONUNBUFFERED": "1"})
        shipper.line(f"$ {self.args.python} -u {entry}")
        process = subprocess.Popen(
            [self.args.python, "-u", entry],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self.running[task_id] = process
        pumps = [
            threading.Thread(target=self._pump, args=(pipe, shipper, level), daemon=True)
            for pipe, level in ((process.stdout, "info"), (process.stderr, "error"))
        ]
        for pump in pumps:
            pump.start()
        aborted = False
        next_poll = time.monotonic() + self.args.abort_poll
        while process.poll() is None:
            if not aborted and (
                self.stopping.is_set() or self._abort_requested(task_id, next_poll)
            ):
                aborted = True
                shipper.line("stopping the task's process", "error")
                _killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(self.args.kill_grace)
                except subprocess.TimeoutExpired:
                    _killpg(process.pid, signal.SIGKILL)
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.args.abort_poll
            time.sleep(0.1)
        _killpg(process.pid, signal.SIGKILL)  # whatever the task left running in its group
        for pump in pumps:
            pump.join(5)
        self.running.pop(task_id, None)
        return process.returncode, aborted

    def _abort_requested(self, task_id: str, next_poll: float) -> bool:
        if time.monotonic() < next_poll:
            return False
        try:
            found = self.session.call(
                "tasks.get_all",
                id=[task_id],
                only_fields=["status", "status_message"],
            )
        except CompatError:
            return False
        rows = found.get("tasks") or []
        if not rows:
            return True  # the task was deleted
        return rows[0].get("status") == "stopped" or rows[0].get("status_message") == "stopping"

    @staticmethod
    def _pump(pipe, shipper: LogShipper, level: str) -> None:
        for raw in iter(pipe.readline, b""):
            shipper.line(raw.decode("utf-8", errors="replace"), level)
        pipe.close()

    def _report(self, task_id: str, endpoint: str, reason: str, force: bool = False) -> None:
        try:
            self.session.call(endpoint, task=task_id, force=force, status_reason=reason)
        except CompatError as error:
            # e.g. `completed` after a pipeline controller marked itself failed: the server
            # refuses (400) and the task keeps its own verdict, as with clearml-agent.
            log.info("%s for %s refused: %s", endpoint, task_id, error)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.clearml.runner",
        description="Run ClearML tasks queued on this server (a minimal clearml-agent).",
    )
    parser.add_argument("--queue", "-q", action="append", required=True, help="queue name")
    parser.add_argument("--name", default="", help="worker name (default host:pid)")
    parser.add_argument("--concurrency", type=int, default=1, help="tasks run at once")
    parser.add_argument("--python", default=sys.executable, help="interpreter for tasks")
    parser.add_argument("--work-dir", default=None, help="where task code is written")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between queue polls")
    parser.add_argument(
        "--abort-poll", type=float, default=2.0, help="seconds between status checks"
    )
    parser.add_argument("--kill-grace", type=float, default=5.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("CLEARML_RUNNER_LOG_LEVEL", "INFO"))
    try:
        config = load_config()
        split_key(config.api_key)
    except (ConfigurationError, ValueError) as error:
        print(
            f"clearml_runner: {error} (set PIPELINES_API_URL and PIPELINES_API_KEY)",
            file=sys.stderr,
        )
        return 2
    name = args.name or f"{socket.gethostname()}:{os.getpid()}"
    session = Session(Client(config, timeout=60, retry_for=60), name)
    runner = Runner(session, args)

    def on_signal(number, _frame):
        log.info("signal %s: stopping", number)
        runner.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        runner.serve()
    except CompatError as error:
        print(f"clearml_runner: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
