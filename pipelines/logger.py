"""Logger: results reported by a task, buffered and sent in background batches."""

import atexit
import json
import math
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from .client import ApiError, get_client

FLUSH_EVERY_SECONDS = 1.0
MAX_BUFFER = 20_000
BATCH = 10_000


def _wire_float(value: float):
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class _Sender:
    """One per task: a buffer and a daemon thread that posts it in batches.

    report_*() only appends to a deque (atomic under the GIL), so the caller pays for one
    dict and one append; the thread takes what is there every FLUSH_EVERY_SECONDS.
    """

    def __init__(self, task_id: str):
        self.task_id = task_id
        self.buffer: deque[dict] = deque()
        self.wakeup = threading.Event()
        self.send_lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="pipelines-logger", daemon=True)
        self.thread.start()

    def add(self, event: dict) -> None:
        self.buffer.append(event)
        if len(self.buffer) >= MAX_BUFFER:
            self.wakeup.set()
            # Back-pressure: a reporter far faster than the server waits instead of growing.
            while len(self.buffer) >= MAX_BUFFER * 2:
                time.sleep(0.01)

    def _loop(self) -> None:
        while True:
            self.wakeup.wait(FLUSH_EVERY_SECONDS)
            self.wakeup.clear()
            self.flush()

    def flush(self) -> None:
        """Send everything buffered so far, in order, one batch per request."""
        with self.send_lock:
            while self.buffer:
                batch = []
                while self.buffer and len(batch) < BATCH:
                    batch.append(self.buffer.popleft())
                self._send(batch)

    def _send(self, batch: list[dict]) -> None:
        # The batch id makes a resend harmless (the server stores a batch once), so retry
        # until the server answers, e.g. across a server restart.
        batch_id = uuid.uuid4().hex
        deadline = time.monotonic() + 60
        while True:
            try:
                get_client().post(
                    f"tasks/{self.task_id}/events/", {"batch_id": batch_id, "events": batch}
                )
                return
            except ApiError as error:
                if error.status not in (0, 502, 503, 504) or time.monotonic() > deadline:
                    return
                time.sleep(0.5)


class Logger:
    """ClearML's Logger: report_scalar, report_plotly, report_matplotlib_figure, ..."""

    _senders: dict[str, _Sender] = {}
    _senders_lock = threading.Lock()

    def __init__(self, task_id: str):
        self._task_id = task_id
        self._cached_sender: _Sender | None = None

    @classmethod
    def for_task(cls, task) -> "Logger":
        return cls(task.id)

    @classmethod
    def current_logger(cls) -> "Logger":
        from .task import Task

        task = Task.current_task()
        if task is None:
            raise RuntimeError("no current task: call Task.init() first")
        return cls(task.id)

    def _sender(self) -> _Sender:
        # report_scalar() is called in tight loops: skip the lock once this logger knows it.
        sender = self._cached_sender
        if sender is not None:
            return sender
        with self._senders_lock:
            sender = self._senders.get(self._task_id)
            if sender is None:
                sender = self._senders[self._task_id] = _Sender(self._task_id)
            self._cached_sender = sender
            return sender

    @classmethod
    def flush_task(cls, task_id: str) -> None:
        sender = cls._senders.get(task_id)
        if sender is not None:
            sender.flush()

    def flush(self) -> None:
        self._sender().flush()

    def report_scalar(self, title: str, series: str, value: float, iteration: int = 0) -> None:
        self._sender().add(
            {
                "type": "scalar",
                "title": title,
                "series": series,
                "iteration": int(iteration),
                "value": _wire_float(value),
            }
        )

    def report_single_value(self, name: str, value: float) -> None:
        self.report_scalar("Summary", name, value, iteration=-(2**31))

    def report_text(self, msg: str, print_console: bool = True, **_: Any) -> None:
        if print_console:
            print(msg)
        self._sender().add({"type": "log", "stream": "stdout", "text": str(msg)})

    def report_plotly(self, title: str, series: str, figure: Any, iteration: int = 0) -> None:
        if hasattr(figure, "to_plotly_json"):
            figure = json.loads(figure.to_json())
        elif hasattr(figure, "to_dict"):
            figure = figure.to_dict()
        self._sender().add(
            {
                "type": "plot",
                "title": title,
                "series": series,
                "iteration": int(iteration),
                "figure": json.loads(json.dumps(figure, default=_jsonable)),
            }
        )

    def report_table(
        self, title: str, series: str, iteration: int = 0, table_plot=None, **_: Any
    ) -> None:
        """A pandas DataFrame (or a list of rows, first row the header) as a Plotly table."""
        if hasattr(table_plot, "columns"):
            header = [str(c) for c in table_plot.columns]
            columns = [[_cell(v) for v in table_plot[c].tolist()] for c in table_plot.columns]
        else:
            rows = list(table_plot or [])
            header = [str(c) for c in rows[0]] if rows else []
            columns = [[_cell(r[i]) for r in rows[1:]] for i in range(len(header))]
        figure = {
            "data": [{"type": "table", "header": {"values": header}, "cells": {"values": columns}}],
            "layout": {"title": {"text": title}},
        }
        self.report_plotly(title, series, figure, iteration)

    def report_matplotlib_figure(
        self, title: str, series: str, figure: Any, iteration: int = 0, **_: Any
    ) -> None:
        from .mpl import figure_to_plotly

        self.report_plotly(title, series, figure_to_plotly(figure), iteration)

    def report_image(
        self,
        title: str,
        series: str,
        iteration: int = 0,
        local_path: str | None = None,
        image=None,
        **_: Any,
    ) -> None:
        """A debug sample: a file path, a PIL image or a numpy array (HxW or HxWx3/4)."""
        self._sender().flush()
        with tempfile.TemporaryDirectory(prefix="pipelines-image-") as folder:
            path = Path(local_path) if local_path else Path(folder) / "image.png"
            if not local_path:
                _write_png(image, path)
            get_client().upload(
                f"tasks/{self._task_id}/samples/",
                path,
                method="POST",
                fields={"title": title, "series": series, "iteration": str(int(iteration))},
                content_type="image/png" if path.suffix.lower() == ".png" else "image/jpeg",
            )


def _write_png(image, path: Path) -> None:
    if hasattr(image, "save"):
        image.save(path, format="PNG")
        return
    import numpy as np

    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(array * (255 if array.max() <= 1 else 1), 0, 255).astype(np.uint8)
    import matplotlib.image

    matplotlib.image.imsave(path, array)


def _cell(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


@atexit.register
def _flush_all() -> None:
    for sender in list(Logger._senders.values()):
        try:
            sender.flush()
        except Exception:  # noqa: BLE001, S110 - exiting; nothing else to do
            pass
