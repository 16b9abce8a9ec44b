"""The step supervisor: one small process per step worker that starts and reaps its steps.

The worker runs this file as a script (`python -I -S step_supervisor.py`, so it imports only
the standard library) with one end of a unix socket as its stdin. It forks each step from
this small, single-threaded process, which is cheaper than forking the worker and, unlike
running code between fork and exec in a multi-threaded worker, cannot deadlock.

Each step leads a session (and process group) of its own. A worker that dies, even by
SIGKILL, closes its end of the socket: the supervisor reads EOF, SIGKILLs every step group
still running and exits, so an orphaned step never runs beside its retry. A step's leader also
gets SIGKILL if the supervisor itself dies (PR_SET_PDEATHSIG), and the worker then kills what
is left of its groups.

Messages are a 4-byte big-endian length and a JSON object, in both directions.
worker -> supervisor:
  {"op": "spawn", "id": N, "argv": [...], "cwd": ..., "env": {...}, "limits": [[resource,
   value], ...], "problem": str|null} with the step's stdout and stderr write ends attached
   (SCM_RIGHTS);
  {"op": "signal", "pid": P, "signal": S}: signal the step's group while it runs.
supervisor -> worker:
  {"op": "spawned", "id": N, "pid": P} or {"op": "spawned", "id": N, "error": str};
  {"op": "exited", "pid": P, "returncode": R, "resources": {...}} (Popen's convention: -S
   for a signal), sent once the leader has exited, whatever it left in its group has been
   SIGKILLed, and the leader has been reaped. `resources` is what the step used (see
   `step_usage`): cpu_seconds, peak_rss_bytes, wall_seconds.
"""

import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct(">I")
# Exit codes of a child that could not become the step, as a shell reports them.
CANNOT_EXECUTE, NOT_FOUND = 126, 127
IGNORED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
RESET = (*IGNORED, signal.SIGPIPE, signal.SIGXFSZ)


def _pdeathsig():
    """prctl(PR_SET_PDEATHSIG, SIGKILL) where Linux has it, else a no-op."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    return lambda: prctl(1, int(signal.SIGKILL), 0, 0, 0)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def receive(sock: socket.socket) -> tuple[dict, list[int]]:
    """One message and the descriptors sent with it; EOFError when the peer is gone."""
    head, fds, _flags, _addr = socket.recv_fds(
        sock, HEADER.size, 4, socket.MSG_CMSG_CLOEXEC if hasattr(socket, "MSG_CMSG_CLOEXEC") else 0
    )
    if not head:
        raise EOFError
    if len(head) < HEADER.size:
        head += _read_exactly(sock, HEADER.size - len(head))
    (size,) = HEADER.unpack(head)
    return json.loads(_read_exactly(sock, size)), list(fds)


def send(sock: socket.socket, message: dict, fds: list[int] = ()) -> None:
    payload = json.dumps(message).encode()
    data = HEADER.pack(len(payload)) + payload
    sent = socket.send_fds(sock, [data], list(fds)) if fds else sock.send(data)
    if sent < len(data):
        sock.sendall(data[sent:])


class Supervisor:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.pid = os.getpid()
        self.live: dict[int, int | None] = {}  # step pid -> its pidfd (None: polled)
        self.started: dict[int, float] = {}  # step pid -> time.monotonic() at its fork
        self.set_pdeathsig = _pdeathsig()

    def run(self) -> None:
        try:
            while True:
                waiting = [fd for fd in self.live.values() if fd is not None]
                polled = any(fd is None for fd in self.live.values())
                ready, _, _ = select.select([self.sock, *waiting], [], [], 0.05 if polled else None)
                if self.sock in ready:
                    message, fds = receive(self.sock)
                    self.handle(message, fds)
                self.reap()
        except (EOFError, ConnectionError):
            pass  # the worker is gone, however it died
        for pid in self.live:
            _killpg(pid, signal.SIGKILL)

    def handle(self, message: dict, fds: list[int]) -> None:
        if message.get("op") == "spawn":
            try:
                reply = self.spawn(message, fds)
            finally:
                for fd in fds:
                    os.close(fd)
            send(self.sock, reply)
        elif message.get("op") == "signal" and message.get("pid") in self.live:
            # Only while the leader is unreaped: its group id cannot have been reused.
            _killpg(message["pid"], message["signal"])

    def spawn(self, message: dict, fds: list[int]) -> dict:
        reply = {"op": "spawned", "id": message["id"]}
        if len(fds) != 2:
            return {**reply, "error": "expected the step's stdout and stderr"}
        report_read, report_write = os.pipe()  # close-on-exec: EOF means the exec worked
        started = time.monotonic()
        try:
            pid = os.fork()
        except OSError as error:
            os.close(report_read)
            os.close(report_write)
            return {**reply, "error": f"fork failed: {error}"}
        if pid == 0:
            self._become_step(message, fds, report_write)  # never returns
        os.close(report_write)
        with os.fdopen(report_read, "rb") as report:
            failure = report.read()
        if failure:
            os.waitpid(pid, 0)
            return {**reply, "error": failure.decode(errors="replace")}
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None
        self.live[pid] = pidfd
        self.started[pid] = started
        return {**reply, "pid": pid}

    def _become_step(self, message: dict, fds: list[int], report: int) -> None:
        """In the forked child: session, descriptors, signals, limits, then exec."""
        try:
            os.setsid()
            self.set_pdeathsig()
            if os.getppid() != self.pid:
                os._exit(1)  # the supervisor died before that: nobody would watch us
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
            for number in RESET:
                signal.signal(number, signal.SIG_DFL)
            os.chdir(message["cwd"])
        except BaseException as error:  # noqa: BLE001 - report it, never return to the loop
            os.write(report, f"cannot set up the step: {error}".encode())
            os._exit(CANNOT_EXECUTE)
        if message.get("problem"):
            os.write(2, message["problem"].encode())
            os._exit(CANNOT_EXECUTE)
        try:
            for kind, value in message.get("limits") or []:
                resource.setrlimit(kind, (value, value))
        except (ValueError, OSError) as error:
            os.write(2, f"cannot apply the step resource limits: {error}\n".encode())
            os._exit(CANNOT_EXECUTE)
        argv = message["argv"]
        try:
            os.execvpe(argv[0], argv, message["env"])  # noqa: S606 - argv, as Popen would
        except BaseException as error:  # noqa: BLE001
            os.write(report, f"cannot run {argv[0]}: {error}".encode())
        os._exit(NOT_FOUND)

    def reap(self) -> None:
        for pid, pidfd in list(self.live.items()):
            try:
                exited = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                exited = True
            if not exited:
                continue
            # Whatever the step left running in its group goes with it, while the leader's
            # unreaped exit still reserves the group id.
            _killpg(pid, signal.SIGKILL)
            wall = time.monotonic() - self.started.pop(pid, time.monotonic())
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            try:
                _, status, usage = os.wait4(pid, 0)
                code = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                code, usage = -signal.SIGKILL, None
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            del self.live[pid]
            if pidfd is not None:
                os.close(pidfd)
            send(
                self.sock,
                {
                    "op": "exited",
                    "pid": pid,
                    "returncode": code,
                    "resources": step_usage(usage, before, after, wall),
                },
            )


def step_usage(usage, before, after, wall: float) -> dict:
    """What a reaped step used. wait4's rusage covers the leader and every descendant it
    waited for (a step's pool workers, its subprocesses). RUSAGE_CHILDREN, read around the
    reap, counts the same exit as seen by this process: both are taken and the larger
    kept, so whichever of them the platform fills in is used. A descendant left running
    and killed with the group was never waited for by anyone: its time is not counted."""
    if usage is None:
        return {"cpu_seconds": None, "peak_rss_bytes": None, "wall_seconds": round(wall, 3)}
    cpu = usage.ru_utime + usage.ru_stime
    counted = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return {
        "cpu_seconds": round(max(cpu, counted, 0.0), 3),
        "peak_rss_bytes": int(usage.ru_maxrss) * scale,
        "wall_seconds": round(max(wall, 0.0), 3),
    }


def _killpg(pgid: int, number: int) -> None:
    try:
        os.killpg(pgid, number)
    except OSError:
        pass


def main() -> None:
    for number in IGNORED:
        signal.signal(number, signal.SIG_IGN)  # the worker decides when steps stop
    sock = socket.socket(fileno=0)
    Supervisor(sock).run()


if __name__ == "__main__":
    main()
