"""The step worker: `pipelines worker -q default`. A Celery worker with no Django in it.

A broker message carries only (task id, attempt). The worker claims that attempt over REST
(a second delivery finds nothing to claim and starts nothing), runs the task's script in a
subprocess in its own process group, streams its console, heartbeats, and reports the end.
It kills the step when the server says stop, when the time limit passes, and when it cannot
heartbeat for a lease (the server may already have handed the task on).

Asked to stop (SIGTERM, Ctrl-C) it takes no new message, lets a running step finish within
PIPELINES_SHUTDOWN_GRACE_SECONDS, and otherwise kills it and hands the attempt back to the
server, which queues it again without counting it; a second signal means "now".
"""

import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..clearml import runner as clearml_runner
from ..client import ApiError, Client
from ..config import ClientConfig, ConfigurationError, load_config
from ..launcher.embedded_redis import broker_url as embedded_broker_url
from ..launcher.embedded_redis import default_data_dir
from . import broker_watch
from .heartbeat import LivenessClock, TaskHeartbeat
from .step_console import ConsoleStream, pump_lines
from .step_resources import GpuSampler
from .step_setup import (
    StepSetupError,
    StepSupervisor,
    clearml_refusal,
    describe_exit,
    materialise,
    step_env,
    step_python,
)

log = logging.getLogger("pipelines.worker")

RUN_TASK = "pipelines.run_task"
# What a worker does about a step it stopped: report the failure, say nothing (the server
# already decided), or hand the attempt back (the worker is shutting down).
REPORT, SILENT, HAND_BACK = "report", "silent", "hand back"
# A fenced step is killed a little before its lease ends on the server, never after it.
FENCE_FRACTION = 0.9


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


@dataclass
class WorkerConfig:
    """Everything a step worker needs: where the server and broker are, and its timings."""

    api_url: str
    api_key: str
    broker_url: str
    name: str
    queues: list[str]
    concurrency: int = 1
    heartbeat: float = 1.0
    lease: float = 30.0
    kill_grace: float = 3.0
    shutdown_grace: float = 20.0
    presence_interval: float = 5.0
    console_max_lines: int = 50_000
    visibility_timeout: int = 43_200
    work_dir: str | None = None
    keep_work_dirs: bool = False

    @classmethod
    def from_env(cls, queues: list[str], name: str = "", concurrency: int = 1) -> "WorkerConfig":
        """Server URL and worker key from PIPELINES_API_URL/KEY (or `pipelines login`)."""
        client = load_config()
        broker = os.environ.get("CELERY_BROKER_URL") or embedded_broker_url(default_data_dir())
        lease = max(0.5, _env_float("PIPELINES_LEASE_SECONDS", 30.0))
        return cls(
            api_url=client.api_url,
            api_key=client.api_key,
            broker_url=broker,
            name=name or f"{socket.gethostname()}:{os.getpid()}",
            queues=list(dict.fromkeys(queues)),
            concurrency=max(1, concurrency),
            # Six heartbeats per lease (five before the fence) and three presence beats per
            # liveness window, not one request a second: what a thousand workers cost.
            heartbeat=max(0.05, _env_float("PIPELINES_HEARTBEAT_SECONDS", lease / 6)),
            lease=lease,
            kill_grace=max(0.0, _env_float("PIPELINES_KILL_GRACE_SECONDS", 3.0)),
            shutdown_grace=max(0.0, _env_float("PIPELINES_SHUTDOWN_GRACE_SECONDS", 20.0)),
            presence_interval=max(0.5, _env_float("PIPELINES_WORKER_HEARTBEAT_SECONDS", lease / 3)),
            console_max_lines=int(_env_float("PIPELINES_CONSOLE_MAX_LINES", 50_000)),
            # Longer than any step may run, so Redis does not redeliver a running message.
            visibility_timeout=int(_env_float("VISIBILITY_TIMEOUT", 43_200)),
            work_dir=os.environ.get("PIPELINES_WORK_DIR") or None,
            keep_work_dirs=os.environ.get("PIPELINES_KEEP_WORK_DIRS", "") in ("1", "true"),
        )


class StepRun:
    """One claimed attempt: set up, run, supervise, report."""

    def __init__(
        self, worker: "StepWorker", task: dict, attempt: int, task_key: str, since, lease=None
    ):
        self.worker, self.config = worker, worker.config
        self.task, self.task_id, self.attempt, self.task_key = task, task["id"], attempt, task_key
        self.claimed_at = since
        # The server's lease (from the claim) when it is the shorter: the fence must fall
        # before the server hands the task on, whatever this machine's settings say.
        self.lease = min(self.config.lease, lease or self.config.lease)
        self.heartbeat_interval = self.config.heartbeat * self.lease / self.config.lease
        self.resources: dict = {}  # what the step used, reported with its end

    def execute(self) -> None:
        console = ConsoleStream(
            self.worker.console_client, self.task_id, self.config.console_max_lines
        ).start()
        console.system(f"worker {self.config.name} runs attempt {self.attempt}")
        # The lease is held from the claim to the report: a slow checkout or a slow final
        # console flush must not look like a dead worker.
        heartbeat = TaskHeartbeat(
            self.worker.beat_client,
            self.task_id,
            self.attempt,
            self.config.name,
            self.heartbeat_interval,
            self.worker.liveness,
        )
        heartbeat.last_accepted = self.claimed_at
        heartbeat.start()
        workdir = None
        outcome: tuple[str, str, str] | None
        try:
            try:
                script = self.task.get("script") or {}
                workdir, cwd, entry = materialise(script, self.config.work_dir)
            except StepSetupError as error:
                outcome = ("failed", f"could not prepare the script: {error}", "")
            else:
                outcome = self._run(cwd, entry, console, heartbeat)
            finally:
                if workdir is not None and not self.config.keep_work_dirs:
                    shutil.rmtree(workdir, ignore_errors=True)
            if outcome is not None and outcome[0] == HAND_BACK:
                console.system(f"attempt {self.attempt} handed back: {outcome[1]}")
            elif outcome is not None:
                console.system(f"attempt {self.attempt} ended: {outcome[0]} ({outcome[1]})")
            # Every line reaches the server before the status changes, so whoever sees the
            # end state also sees the whole console.
            console.close()
            if outcome is not None and outcome[0] == HAND_BACK:
                self._release(outcome[1])
            elif outcome is not None:
                self._finish(*outcome)
        finally:
            heartbeat.halt()

    def _run(
        self, cwd: Path, entry: str, console: ConsoleStream, heartbeat: "TaskHeartbeat"
    ) -> tuple[str, str, str] | None:
        command = [step_python(self.task), "-u", entry]
        console.system(f"$ python -u {entry}")
        try:
            process = self.worker.supervisor.spawn(command, cwd=cwd, env=self._step_env())
        except OSError as error:
            return ("failed", f"could not start the step: {error}", "")
        stderr_tail: deque[str] = deque(maxlen=40)
        readers = [
            threading.Thread(target=pump_lines, args=(pipe, stream, console, tail), daemon=True)
            for pipe, stream, tail in (
                (process.stdout, "stdout", None),
                (process.stderr, "stderr", stderr_tail),
            )
        ]
        for reader in readers:
            reader.start()
        gpu = GpuSampler(process.pid).start()
        stop_reason, then = self._supervise(process, heartbeat, console)
        code = process.wait()
        self.resources = {**process.resources, "gpu_seconds": gpu.stop()}
        for reader in readers:
            reader.join(5)
        console.system(f"step process ended: {describe_exit(code)}")
        if stop_reason is not None:
            if then == HAND_BACK:
                return (HAND_BACK, stop_reason, "")
            return ("failed", stop_reason, "") if then == REPORT else None
        if code == 0:
            return ("completed", "exit code 0", "")
        return ("failed", describe_exit(code), "\n".join(stderr_tail)[-4000:])

    def _step_env(self) -> dict:
        env = step_env(self.config.api_url, self.task_key, self.task_id)
        # A task created by the official `clearml` SDK attaches through its own variables.
        if clearml_runner.is_clearml_task(self.task):
            env.update(clearml_runner.task_env(self.config.api_url, self.task_key, self.task_id))
        return env

    def _supervise(self, process, heartbeat: TaskHeartbeat, console) -> tuple[str | None, str]:
        """Wait for the step to exit, killing its group when it must stop.

        Returns (why it was stopped, or None if it ended by itself; then: REPORT the failure,
        SILENT, or HAND_BACK the attempt)."""
        limit = self.task.get("time_limit") or 0
        deadline = time.monotonic() + limit if limit > 0 else None
        reason, then, escalate_at, warned = None, REPORT, None, False
        while not process.has_exited():
            now = time.monotonic()
            if reason is None:
                hard = False
                if self.worker.shutting_down.is_set() and not warned:
                    warned = True
                    console.system(
                        f"worker {self.config.name} is shutting down: the step has "
                        f"{self.worker.grace_left():.0f}s to finish, then it is stopped and "
                        "handed back to run again"
                    )
                if heartbeat.stop_reason:
                    reason, then = heartbeat.stop_reason, SILENT
                elif heartbeat.silent_for() > self.lease * FENCE_FRACTION:
                    reason = f"lost contact with the server for {heartbeat.silent_for():.0f}s"
                    hard = True  # the lease is gone: the server may already run it elsewhere
                elif deadline is not None and now >= deadline:
                    reason = f"time limit exceeded ({limit:g}s)"
                elif self.worker.must_hand_back():
                    reason, then = self.worker.hand_back_reason(), HAND_BACK
                if reason is not None:
                    console.system(f"stopping the step: {reason}")
                    process.signal_group(signal.SIGKILL if hard else signal.SIGTERM)
                    escalate_at = now + (0 if hard else self.config.kill_grace)
            elif escalate_at is not None and now >= escalate_at:
                process.signal_group(signal.SIGKILL)
                escalate_at = None
            # The supervisor reports the end once whatever the step left in its group is gone.
            process.wait(0.05)
        return reason, then

    def _release(self, reason: str) -> None:
        """Give the attempt back: the server queues it again without counting it."""
        try:
            self.worker.client.post(
                f"tasks/{self.task_id}/release/",
                {"attempt": self.attempt, "worker": self.config.name, "reason": reason[:200]},
            )
            log.info("handed back task %s attempt %s: %s", self.task_id, self.attempt, reason)
        except ApiError as error:
            if error.status in (404, 409):
                log.info("task %s moved on before its hand-back (%s)", self.task_id, error.detail)
            else:
                log.warning(
                    "could not hand back task %s attempt %s: %s (the server re-queues it "
                    "once its lease ends)",
                    self.task_id,
                    self.attempt,
                    error,
                )

    def _finish(self, status: str, reason: str, message: str) -> None:
        try:
            self.worker.client.post(
                f"tasks/{self.task_id}/finish/",
                {
                    "attempt": self.attempt,
                    "status": status,
                    "reason": reason[:255],
                    "message": message,
                    "resources": self.resources,
                },
            )
        except ApiError as error:
            if error.status == 409:
                log.info("task %s moved on before its report (%s)", self.task_id, error.detail)
            else:
                log.warning("could not report %s for task %s: %s", status, self.task_id, error)


class StepWorker:
    """Claims and runs messages; keeps the worker's own presence on the server."""

    def __init__(self, config: WorkerConfig):
        self.config = config
        credentials = ClientConfig(config.api_url, config.api_key)
        self.client = Client(credentials, timeout=30, retry_for=30)
        # Heartbeats must fail fast: a slow retry would eat into the lease.
        beat_timeout = max(1.0, min(5.0, config.lease / 3))
        self.beat_client = Client(credentials, timeout=beat_timeout, retry_for=0)
        self.console_client = Client(credentials, timeout=10, retry_for=0)
        # Set on the first SIGTERM/SIGINT: no new message; running steps get the grace.
        self.shutting_down = threading.Event()
        # Set on the second: running steps are stopped and handed back at once.
        self.stop_now = threading.Event()
        self.shutdown_started = 0.0
        self.stopped = threading.Event()
        self.supervisor = StepSupervisor()
        self.liveness = LivenessClock()
        self._presence: threading.Thread | None = None

    def request_stop(self) -> None:
        """A stop signal (or Celery's shutdown). Safe in a signal handler: no locks, no I/O."""
        if self.shutting_down.is_set():
            self.stop_now.set()
            return
        self.shutdown_started = time.monotonic()
        self.shutting_down.set()

    def grace_left(self) -> float:
        if self.stop_now.is_set():
            return 0.0
        elapsed = time.monotonic() - self.shutdown_started
        return max(0.0, self.config.shutdown_grace - elapsed)

    def must_hand_back(self) -> bool:
        """True once a running step has had its grace (or a second signal came)."""
        return self.shutting_down.is_set() and self.grace_left() <= 0

    def _refuse(self, task_id: str, attempt: int, reason: str) -> None:
        try:
            self.client.post(
                f"tasks/{task_id}/finish/",
                {"attempt": attempt, "status": "failed", "reason": reason[:255]},
            )
        except ApiError as error:
            log.warning("could not refuse task %s: %s", task_id, error)

    def hand_back_reason(self) -> str:
        grace = self.config.shutdown_grace
        if time.monotonic() - self.shutdown_started < grace:
            return "the worker was told to stop at once"
        return f"the worker shut down; the step did not end within its {grace:g}s grace"

    def handle(self, task_id: str, attempt: int) -> None:
        """One broker message. Never raises: the row, not the message, is the truth."""
        since = time.monotonic()
        # Ours alone: if the answer is lost and the client retries, the server recognises the
        # claim as this one, where another delivery of the same message gets nothing.
        claim_id = uuid.uuid4().hex
        try:
            claimed = self.client.post(
                f"tasks/{task_id}/claim/",
                {"attempt": attempt, "worker": self.config.name, "claim_id": claim_id},
            )
        except ApiError as error:
            if error.status in (404, 409):
                log.info(
                    "task %s attempt %s is not claimable (%s): dropped; "
                    "a second delivery starts nothing",
                    task_id,
                    attempt,
                    error.detail,
                )
            else:
                log.warning(
                    "could not claim task %s attempt %s: %s (the server re-publishes it)",
                    task_id,
                    attempt,
                    error,
                )
            return
        # The message is a turn in its queue: the server hands over the queue's first task,
        # which is this message's own unless another was moved ahead of it.
        if claimed["task"]["id"] != task_id:
            log.info("message for task %s took its queue's first task instead", task_id)
        task_id, attempt = claimed["task"]["id"], claimed["task"]["attempt"]
        log.info("claimed task %s attempt %s", task_id, attempt)
        refusal = clearml_refusal(claimed["task"])
        if refusal is not None:
            log.warning("task %s refused: %s", task_id, refusal)
            self._refuse(task_id, attempt, refusal)
            return
        try:
            lease = claimed.get("lease_seconds")
            StepRun(self, claimed["task"], attempt, claimed["task_key"], since, lease).execute()
        except Exception as error:  # noqa: BLE001 - report, then keep serving
            log.exception("task %s attempt %s broke the worker", task_id, attempt)
            try:
                self.client.post(
                    f"tasks/{task_id}/finish/",
                    {"attempt": attempt, "status": "failed", "reason": f"worker error: {error}"},
                )
            except ApiError:
                pass
        log.info("task %s attempt %s done", task_id, attempt)

    def key_problem(self) -> str | None:
        """Why this worker's key cannot claim tasks, if the server says so; None otherwise."""
        try:
            me = Client(ClientConfig(self.config.api_url, self.config.api_key), retry_for=5).get(
                "me/"
            )
        except ApiError as error:
            if error.status in (401, 403):
                return f"the server at {self.config.api_url} refuses this key ({error.detail})"
            log.warning("cannot reach %s yet (%s); starting anyway", self.config.api_url, error)
            return None
        if me.get("key_kind") == "worker" or (me.get("is_staff") and me.get("key_kind") == "user"):
            return None
        return "this key cannot claim tasks: use a worker key (or a staff user's key)"

    def announce(self) -> None:
        """Start telling the server this worker is alive (on the worker's `ready`)."""
        if self._presence is None:
            self._presence = threading.Thread(target=self._presence_loop, daemon=True)
            self._presence.start()

    def _presence_loop(self) -> None:
        body = {
            "name": self.config.name,
            "queues": self.config.queues,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
        }
        # Until the process ends, not just until it is asked to stop: a worker letting its
        # step finish is still there.
        interval = self.config.presence_interval
        registered = False
        while not self.stopped.is_set():
            # The server counts an accepted task heartbeat as this worker's presence too, so
            # a busy worker sends only those; the first beat registers its queues.
            silent = self.liveness.silent_for()
            if registered and silent < interval:
                self.stopped.wait(max(0.05, interval - silent))
                continue
            try:
                self.beat_client.post("workers/heartbeat/", body)
                registered = True
                self.liveness.beat()
            except ApiError as error:
                log.warning("worker heartbeat failed: %s", error)
            self.stopped.wait(interval)

    def unregister(self) -> None:
        try:
            Client(ClientConfig(self.config.api_url, self.config.api_key), retry_for=2).post(
                "workers/unregister/", {"name": self.config.name}
            )
        except ApiError as error:
            log.warning("could not unregister worker %s: %s", self.config.name, error)


def build_app(worker: StepWorker):
    """The worker's own Celery app: no Django, JSON only, one message per free slot."""
    from celery import Celery

    config = worker.config
    app = Celery("pipelines-worker", set_as_current=False)
    app.conf.update(
        broker_url=config.broker_url,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": config.visibility_timeout},
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_acks_on_failure_or_timeout=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        # A broker blip must not kill a running step: the lease, not the broker, says who runs.
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )

    broker_watch.install(app)

    @app.task(name=RUN_TASK, ignore_result=True)
    def run_task(task_id: str, attempt: int) -> None:
        if worker.shutting_down.is_set():
            from celery.exceptions import Reject

            # Delivered after the worker was told to stop: back to the broker, unclaimed.
            raise Reject("the worker is shutting down", requeue=True)
        worker.handle(str(task_id), int(attempt))

    return app


def _tick() -> None:
    """Nothing: being called wakes the event loop."""


def run_worker(queues: list[str], name: str = "", concurrency: int = 1) -> int:
    """Run a step worker on `queues` until SIGTERM/SIGINT; returns the exit code."""
    from celery import signals
    from celery.concurrency import get_implementation
    from celery.utils.log import mlevel

    try:
        config = WorkerConfig.from_env(queues or ["default"], name, concurrency)
    except ConfigurationError as error:
        print(f"pipelines worker: {error}", file=sys.stderr)
        return 2
    worker = StepWorker(config)
    problem = worker.key_problem()
    if problem:
        print(f"pipelines worker: {problem}", file=sys.stderr)
        return 2
    app = build_app(worker)

    # One slot: the solo pool runs the step's supervision in Celery's own loop, so the next
    # message is fetched the moment a step ends. Our heartbeat and console threads keep
    # running meanwhile, and no broker heartbeat is expected of a blocked loop. More slots:
    # threads, with a short timer so a slot freed by a pool thread re-arms the Redis fetch
    # at once (kombu's loop otherwise only wakes on its 10 s restore timer).
    pool = "solo" if config.concurrency == 1 else "threads"

    def on_ready(sender=None, **_kwargs):
        hub = getattr(sender, "hub", None)
        if pool == "threads" and hub is not None:
            hub.call_repeatedly(0.2, _tick)
        _take_stop_signals(worker)
        worker.announce()
        log.info("worker %s consumes %s", config.name, ", ".join(config.queues))

    def on_shutting_down(**_kwargs):
        # Celery's own handlers, for a signal that came before the worker was ready.
        worker.request_stop()

    signals.worker_ready.connect(on_ready, weak=False)
    signals.worker_shutting_down.connect(on_shutting_down, weak=False)
    if pool == "solo":
        app.conf.broker_heartbeat = 0
    # Celery's worker class itself, not its command line: the CLI imports an interactive
    # shell (click-repl, prompt-toolkit, pygments), about 11 MB of memory per worker.
    celery_worker = app.Worker(
        hostname=f"pipelines-{os.getpid()}@{socket.gethostname()}",
        queues=list(config.queues),
        pool_cls=get_implementation(pool),
        concurrency=config.concurrency,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        loglevel=mlevel(os.environ.get("PIPELINES_LOG_LEVEL", "INFO")),
    )
    code = 0
    try:
        celery_worker.start()
        code = celery_worker.exitcode or 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        log.info("worker %s: the consumer stopped; closing the step supervisor", config.name)
        worker.request_stop()
        worker.stopped.set()
        worker.supervisor.close()
        worker.unregister()
        log.info("worker %s: unregistered; exiting", config.name)
    return code


def _take_stop_signals(worker: StepWorker) -> None:
    """SIGTERM, SIGINT and SIGQUIT as this worker means them, instead of Celery's handlers.

    The first: take no new message (Celery's loop stops at its next turn) and give running
    steps their grace. Any next one: stop them now and hand them back. Celery's own second
    Ctrl-C would cancel requests from inside the signal handler, in the middle of the step
    the solo pool is supervising.
    """
    from celery.worker import state

    grace = worker.config.shutdown_grace

    def on_stop_signal(number, _frame) -> None:
        first = not worker.shutting_down.is_set()
        worker.request_stop()
        state.should_stop = 0  # Celery's warm shutdown, exit code 0
        name = signal.Signals(number).name
        if first:
            text = (
                f"worker: {name}: taking no new task; a running step has {grace:g}s to "
                "finish, then it is handed back (send it again to hand it back now)\n"
            )
        else:
            text = f"worker: {name} again: handing back the running step now\n"
        os.write(2, text.encode())

    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(number, on_stop_signal)
