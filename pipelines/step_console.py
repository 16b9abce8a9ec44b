"""A running step's console on its way to the server: batched, bounded, never blocking the step.

Lines are shipped every `flush_seconds` or every `batch_lines` lines. A run keeps at most
`max_lines`: the first half is shipped live, then the latest lines are held in a bounded tail
and shipped at the end after a "… N lines dropped …" marker, so memory stays bounded however
much a step prints and however long the server is unreachable.
"""

import logging
import threading
import time
from collections import deque

from .client import ApiError, Client

log = logging.getLogger("pipelines.worker")

MAX_LINE_CHARS = 10_000  # the server keeps at most this much of one line
READ_LIMIT = 64 * 1024
MAX_POST_LINES = 5_000  # the API takes up to 10,000 lines per call
TAIL_CHAR_BUDGET = 16 * 1024 * 1024
CUT_MARK = " … [line cut]"


class ConsoleStream:
    """Collects lines from reader threads; one shipper thread posts them in order."""

    def __init__(
        self,
        client: Client,
        task_id: str,
        max_lines: int = 50_000,
        flush_seconds: float = 0.5,
        batch_lines: int = 1_000,
    ):
        self.client, self.task_id = client, task_id
        self.flush_seconds, self.batch_lines = flush_seconds, batch_lines
        self._cond = threading.Condition()
        self._pending: list[dict] = []
        max_lines = max(2, max_lines)
        self._head_left = max_lines - max_lines // 2
        self._tail: deque[dict] = deque()
        self._tail_max = max_lines // 2
        self._tail_chars = 0
        self._dropped = 0
        self._capped = False
        self._closing = False
        self._deadline = 0.0
        self._thread = threading.Thread(target=self._run, name=f"console-{task_id[:8]}")
        self._thread.daemon = True

    def start(self) -> "ConsoleStream":
        self._thread.start()
        return self

    def add(self, stream: str, text: str) -> None:
        """One line of step output (stdout or stderr)."""
        line = {"stream": stream, "text": clip(text)}
        with self._cond:
            if self._head_left > 0:
                self._head_left -= 1
                self._pending.append(line)
                if len(self._pending) >= self.batch_lines:
                    self._cond.notify()
                return
            if not self._capped:
                self._capped = True
                self._pending.append(
                    _system(
                        "console limit reached: further output is held back; "
                        f"the last {self._tail_max} lines are shown when the step ends"
                    )
                )
            self._tail.append(line)
            self._tail_chars += len(line["text"])
            while len(self._tail) > self._tail_max or self._tail_chars > TAIL_CHAR_BUDGET:
                self._tail_chars -= len(self._tail.popleft()["text"])
                self._dropped += 1

    def system(self, text: str) -> None:
        """A line from the worker itself; not counted against the step's limit."""
        with self._cond:
            self._pending.append(_system(text))
            self._cond.notify()

    def close(self, timeout: float = 15.0) -> None:
        """Ship everything still held (tail included), trying for at most `timeout` seconds."""
        with self._cond:
            if self._dropped:
                self._pending.append(_system(f"… {self._dropped} lines dropped …"))
            self._pending.extend(self._tail)
            self._tail.clear()
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify()
        self._thread.join(timeout + 1)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._closing or len(self._pending) >= self.batch_lines,
                    timeout=self.flush_seconds,
                )
                batch, self._pending = self._pending, []
                closing = self._closing
            sent = self._send(batch)
            if closing:
                with self._cond:
                    if not self._pending or time.monotonic() > self._deadline:
                        if self._pending:
                            log.warning(
                                "%d console lines of %s could not be delivered",
                                len(self._pending),
                                self.task_id,
                            )
                        return
            if not sent:
                time.sleep(min(self.flush_seconds, 0.5))

    def _send(self, batch: list[dict]) -> bool:
        """Post `batch`; on a transient failure put the rest back in front. True if all went."""
        for start in range(0, len(batch), MAX_POST_LINES):
            chunk = batch[start : start + MAX_POST_LINES]
            try:
                self.client.post(f"tasks/{self.task_id}/console/", {"lines": chunk})
            except ApiError as error:
                if error.status == 0 or error.status >= 500 or error.status == 429:
                    with self._cond:
                        self._pending[:0] = batch[start:]
                    return False
                log.warning("console lines for %s refused: %s", self.task_id, error)
        return True


def _system(text: str) -> dict:
    return {"stream": "system", "text": clip(f"[pipelines] {text}")}


def clip(text: str, cut: bool = False) -> str:
    """At most MAX_LINE_CHARS, saying so when something was cut off."""
    if cut or len(text) > MAX_LINE_CHARS:
        return text[: MAX_LINE_CHARS - len(CUT_MARK)] + CUT_MARK
    return text


def pump_lines(pipe, stream: str, console: ConsoleStream, tail: deque | None) -> None:
    """Read a pipe line by line until EOF; overlong lines are cut, not buffered whole."""
    with pipe:
        while True:
            raw = pipe.readline(READ_LIMIT)
            if not raw:
                return
            cut = False
            if not raw.endswith(b"\n") and len(raw) >= READ_LIMIT:
                cut = True
                rest = raw
                while rest and not rest.endswith(b"\n"):
                    rest = pipe.readline(READ_LIMIT)
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if "\r" in text:
                # Progress bars redraw with \r: keep what the terminal would finally show.
                text = next((part for part in reversed(text.split("\r")) if part), "")
            text = clip(text, cut)
            console.add(stream, text)
            if tail is not None:
                tail.append(text)
