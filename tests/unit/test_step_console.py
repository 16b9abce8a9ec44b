"""The worker's console shipping: order, the head + tail cap, retries, line splitting."""

import io
from collections import deque

from pipelines.client import ApiError
from pipelines.worker.step_console import MAX_LINE_CHARS, READ_LIMIT, ConsoleStream, pump_lines


class FakeClient:
    def __init__(self, failures: int = 0):
        self.failures = failures
        self.lines: list[dict] = []

    def post(self, path, body):
        if self.failures:
            self.failures -= 1
            raise ApiError(0, "server unreachable")
        self.lines.extend(body["lines"])


def test_a_long_console_keeps_its_head_and_tail_around_a_dropped_marker():
    client = FakeClient()
    console = ConsoleStream(client, "t" * 32, max_lines=10, flush_seconds=0.01).start()
    for number in range(100):
        console.add("stdout", f"line {number}")
    console.close(timeout=5)
    texts = [line["text"] for line in client.lines]
    assert texts[:5] == [f"line {n}" for n in range(5)]
    assert texts[5].startswith("[pipelines] console limit reached")
    assert texts[6] == "[pipelines] … 90 lines dropped …"
    assert texts[7:] == [f"line {n}" for n in range(95, 100)]


def test_lines_survive_a_server_that_is_briefly_unreachable_and_keep_their_order():
    client = FakeClient(failures=2)
    console = ConsoleStream(client, "t" * 32, flush_seconds=0.01).start()
    for number in range(20):
        console.add("stderr" if number % 2 else "stdout", str(number))
    console.system("done")
    console.close(timeout=10)
    assert [line["text"] for line in client.lines] == [str(n) for n in range(20)] + [
        "[pipelines] done"
    ]
    assert client.lines[1]["stream"] == "stderr"


def test_pumped_lines_are_decoded_cut_and_show_the_last_progress_redraw():
    client = FakeClient()
    console = ConsoleStream(client, "t" * 32, flush_seconds=0.01).start()
    huge = b"x" * (READ_LIMIT * 3)
    pipe = io.BytesIO(b"plain\n10%\r50%\r100%\n" + huge + b"\nafter \xff\n")
    tail: deque = deque(maxlen=2)
    pump_lines(pipe, "stderr", console, tail)
    console.close(timeout=5)
    texts = [line["text"] for line in client.lines]
    assert texts[:2] == ["plain", "100%"]
    assert texts[2].endswith("… [line cut]") and len(texts[2]) <= MAX_LINE_CHARS + 20
    assert texts[3] == "after \ufffd"
    assert list(tail) == [texts[2], texts[3]]
