"""Steps run as subprocesses of the controller (start_locally(run_pipeline_steps_locally=
True), PipelineDecorator.run_locally()), recorded as tasks like any other.

The engine makes each step's clone a draft instead of enqueueing it; this process marks it
started, writes its script to a fresh directory as a worker would (worker/step_setup.py),
runs it with `PIPELINES_TASK_ID` set so `Task.init` inside attaches to the clone, ships
its console (worker/step_console.py), pings it (the server's lease for runs in a user's own
process) and reports its end from the exit code. The step uses this process's own key,
since it runs this user's code on this user's machine.

Steps are forked by a step supervisor, as a worker's are: should this process die, the
supervisor kills every step it still runs, so none is left behind its run.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections import deque

from .client import ApiError, Client
from .liveness import Pinger
from .worker.step_console import ConsoleStream, pump_lines
from .worker.step_setup import (
    PRIVATE_ENV,
    StepSetupError,
    StepSupervisor,
    describe_exit,
    materialise,
)

KILL_GRACE_SECONDS = 3.0


class LocalStep(threading.Thread):
    """One step's task run here, in a thread of its own; `outcome` once it has ended."""

    def __init__(self, client: Client, task_id: str, supervisor: StepSupervisor):
        super().__init__(name=f"local-step-{task_id[:8]}", daemon=True)
        self.client, self.task_id, self.supervisor = client, task_id, supervisor
        self.outcome: str | None = None

    def run(self) -> None:
        try:
            self.outcome = self._run()
        except Exception as error:  # noqa: BLE001 - the step fails, the controller goes on
            self._finish("failed", f"the controller could not run the step: {error}"[:255])
            self.outcome = "failed"

    def _run(self) -> str:
        task = self.client.get(f"tasks/{self.task_id}/")
        try:
            workdir, cwd, entry = materialise(task.get("script") or {}, None)
        except StepSetupError as error:
            self._finish("failed", f"could not prepare the script: {error}"[:255])
            return "failed"
        try:
            self.client.post(f"tasks/{self.task_id}/started/")
        except ApiError:
            shutil.rmtree(workdir, ignore_errors=True)
            return "stopped"  # aborted before it started
        pinger = Pinger(self.client, self.task_id).start()
        console = ConsoleStream(self.client, self.task_id).start()
        console.system(f"$ python -u {entry} (a subprocess of the pipeline's controller)")
        try:
            status, reason, message = self._execute(task, cwd, entry, console)
        finally:
            pinger.stop()
            console.close()
            shutil.rmtree(workdir, ignore_errors=True)
        self._finish(status, reason, message)
        return status

    def _execute(self, task: dict, cwd, entry: str, console: ConsoleStream):
        env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
        env.update(
            {
                "PIPELINES_API_URL": self.client.config.api_url,
                "PIPELINES_API_KEY": self.client.config.api_key,
                "PIPELINES_TASK_ID": self.task_id,
                "PYTHONUNBUFFERED": "1",
            }
        )
        try:
            process = self.supervisor.spawn([sys.executable, "-u", entry], cwd=cwd, env=env)
        except OSError as error:
            return "failed", f"could not start the step: {error}"[:255], ""
        tail: deque[str] = deque(maxlen=40)
        readers = [
            threading.Thread(target=pump_lines, args=args, daemon=True)
            for args in (
                (process.stdout, "stdout", console, None),
                (process.stderr, "stderr", console, tail),
            )
        ]
        for reader in readers:
            reader.start()
        limit = task.get("time_limit") or 0
        deadline = time.monotonic() + limit if limit > 0 else None
        stopped = None
        while not process.has_exited():
            if deadline is not None and time.monotonic() >= deadline:
                stopped = f"time limit exceeded ({limit:g}s)"
            elif self._stopped_on_server():
                stopped = "stopped on the server"
            if stopped is not None:
                process.signal_group(signal.SIGTERM)
                if process.wait(KILL_GRACE_SECONDS) is None:
                    process.signal_group(signal.SIGKILL)
                break
            process.wait(0.1)
        code = process.wait()
        for reader in readers:
            reader.join(5)
        console.system(f"step process ended: {describe_exit(code)}")
        if stopped is not None:
            return "failed", stopped, ""
        if code == 0:
            return "completed", "exit code 0", ""
        return "failed", describe_exit(code), "\n".join(tail)[-4000:]

    _checked = 0.0

    def _stopped_on_server(self) -> bool:
        """Aborted (the run stopped): asked once a second, as a worker's heartbeat would."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return False
        self._checked = now
        try:
            return self.client.get(f"tasks/{self.task_id}/")["status"] != "in_progress"
        except ApiError:
            return False

    def _finish(self, status: str, reason: str, message: str = "") -> None:
        try:
            self.client.post(
                f"tasks/{self.task_id}/{status}/", {"reason": reason[:255], "message": message}
            )
        except ApiError:
            pass  # already ended on the server (aborted with its run)
