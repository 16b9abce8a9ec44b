"""Several web server processes on one listening socket, kept at their number.

Python runs one thread of Python at a time per process, so a single waitress process uses
about one core however many threads it has. `pipelines server` with WEB_PROCESSES = N loads
the app once, binds the socket, and forks N children that each run waitress on the same
socket (the kernel hands each new connection to one of them). The parent only supervises:
it starts a child again when one dies (the others keep serving meanwhile), passes SIGTERM
and SIGINT on, and waits for its children before it exits, so a restarted server can bind
the port at once. A child dies with its parent (PR_SET_PDEATHSIG), even a SIGKILLed one.
"""

import ctypes
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

logger = logging.getLogger("pipelines.server")

PR_SET_PDEATHSIG = 1
# A child that dies sooner than this after its start counts as a crash at start; after
# this many in a row the server gives up instead of forking for ever (a broken install).
QUICK_DEATH_SECONDS = 2.0
QUICK_DEATHS_ALLOWED = 5
STOP_TIMEOUT_SECONDS = 10.0


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Prefork:
    """Runs `serve()` in `count` forked children until SIGTERM/SIGINT; returns an exit code."""

    def __init__(self, count: int, serve: Callable[[int], None]):
        self.count = count
        self.serve = serve
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started)
        self.stopping = False
        self.quick_deaths = 0

    def run(self) -> int:
        parent = os.getpid()
        # Objects loaded so far stay in the parent's pages: keep the collector from
        # touching them in every child, which would copy those pages once per child.
        gc.freeze()
        previous = {
            number: signal.signal(number, self._stop) for number in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for slot in range(self.count):
                self._fork(slot, parent)
            return self._supervise()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _fork(self, slot: int, parent: int) -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for number in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(number, signal.SIG_DFL)
                _die_with_parent()
                if os.getppid() != parent:  # the parent died before the line above
                    os._exit(0)
                self.serve(slot)
            except BaseException:  # noqa: BLE001 - a child must never return into the parent
                logger.exception("server process %s failed", slot)
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.children[pid] = (slot, time.monotonic())

    def _stop(self, number, _frame) -> None:
        self.stopping = True
        for pid in list(self.children):
            _signal(pid, number)

    def _supervise(self) -> int:
        parent = os.getpid()
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            slot, started = self.children.pop(pid, (None, 0.0))
            if slot is None or self.stopping:
                continue
            lived = time.monotonic() - started
            logger.warning(
                "server process %s (pid %s) ended (%s) after %.1fs; starting another",
                slot,
                pid,
                _describe(status),
                lived,
            )
            self.quick_deaths = self.quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
            if self.quick_deaths >= QUICK_DEATHS_ALLOWED:
                logger.error("server processes keep dying at start: stopping")
                self._stop(signal.SIGTERM, None)
                self._reap_all()
                return 1
            if self.quick_deaths:
                time.sleep(min(QUICK_DEATH_SECONDS, 0.2 * 2**self.quick_deaths))
            if not self.stopping:
                self._fork(slot, parent)
        self._reap_all()
        return 0

    def _reap_all(self) -> None:
        """Wait (bounded) for every child, then SIGKILL what is left."""
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while self.children and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                break
            if pid:
                self.children.pop(pid, None)
            else:
                time.sleep(0.05)
        for pid in list(self.children):
            _signal(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.children.clear()


def _signal(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
