"""Console capture for runs on a dev machine (under a worker, the worker captures it)."""

import sys
import threading


class _Tee:
    """Writes through to the real stream and sends complete lines to the task's console."""

    def __init__(self, stream, name: str, logger):
        self._stream = stream
        self._name = name
        self._logger = logger
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        with self._lock:
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self._logger._sender().add({"type": "log", "stream": self._name, "text": line})
        return written

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def capture(task) -> None:
    from .logger import Logger

    logger = Logger.for_task(task)
    if not isinstance(sys.stdout, _Tee):
        sys.stdout = _Tee(sys.stdout, "stdout", logger)
    if not isinstance(sys.stderr, _Tee):
        sys.stderr = _Tee(sys.stderr, "stderr", logger)
