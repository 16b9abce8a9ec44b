"""A running step's console on its way to the server: batched, bounded, never blocking the step.

Lines are shipped every `flush_seconds` or every `batch_lines` lines. A run keeps at most
`max_lines`: the first half is shipped live, then the latest lines are held in a bounded tail
and shipped at the end after a "… N lines dropped …" marker, so memory stays bounded however
much a step prints and however long the server is unreachable.
"""

import logging
import threading
import time
import uuid
from collections import deque

from ..client import ApiError, Client

log = logging.getLogger("pipelines.worker")

MAX_LINE_CHARS = 10_000  # the server keeps at most this much of one line
READ_LIMIT = 64 * 1024
MAX_POST_LINES = 5_000  # the API takes up to 10,000 lines per call
# Far below the server's request body limit (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB by Django's
# default), however wide the lines: a refused batch would be lost.
MAX_POST_BYTES = 1024 * 1024
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
        # Batches cut and named but not yet accepted; only the shipper thread touches it.
        self._unsent: deque[tuple[str, list[dict]]] = deque()
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
            self._unsent.extend((uuid.uuid4().hex, chunk) for chunk in _chunks(batch))
            sent = self._send()
            if closing:
                with self._cond:
                    left = len(self._pending) + sum(len(c) for _, c in self._unsent)
                    if not left or time.monotonic() > self._deadline:
                        if left:
                            log.warning(
                                "%d console lines of %s could not be delivered",
                                left,
                                self.task_id,
                            )
                        return
            if not sent:
                time.sleep(min(self.flush_seconds, 0.5))

    def _send(self) -> bool:
        """Post the unsent batches in order; stop at a transient failure. True if all went.

        A batch keeps its id until the server accepts it, so one that reached the server
        but whose answer was lost is stored once when it is sent again.
        """
        while self._unsent:
            batch_id, chunk = self._unsent[0]
            try:
                self.client.post(
                    f"tasks/{self.task_id}/console/", {"lines": chunk, "batch_id": batch_id}
                )
            except ApiError as error:
                if error.status == 0 or error.status >= 500 or error.status == 429:
                    return False
                log.warning("console lines for %s refused: %s", self.task_id, error)
            self._unsent.popleft()
        return True


def _chunks(lines: list[dict]):
    """`lines` in requests of at most MAX_POST_LINES lines and about MAX_POST_BYTES bytes."""
    chunk: list[dict] = []
    size = 0
    for line in lines:
        text = line["text"]
        # JSON escapes each non-ASCII character to \uXXXX (twice that for astral ones).
        cost = 40 + (len(text) if text.isascii() else 12 * len(text))
        if chunk and (len(chunk) >= MAX_POST_LINES or size + cost > MAX_POST_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += cost
    if chunk:
        yield chunk


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
