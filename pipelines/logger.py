"""Logger: results reported by a task, buffered and sent in background batches."""

import atexit
import json
import logging
import math
import mimetypes
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from . import report_figures
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

    SeriesInfo = report_figures.SeriesInfo
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
        """A point of the series title/series (Results > Scalars)."""
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
        """A value of the whole run (an accuracy, a mAP): kept by name, shown in a table."""
        self._sender().add({"type": "single_value", "name": str(name), "value": _wire_float(value)})

    def report_text(
        self, msg: str, level: int = logging.INFO, print_console: bool = True, *_: Any, **__: Any
    ) -> None:
        if print_console:
            print(msg)
        stream = "stderr" if _level(level) >= logging.WARNING else "stdout"
        self._sender().add({"type": "log", "stream": stream, "text": str(msg)})

    def report_plotly(
        self, title: str, series: str, figure: Any, iteration: int | None = None
    ) -> None:
        """A Plotly figure: a plotly Figure or a plotly.js dict."""
        if hasattr(figure, "to_plotly_json"):
            figure = json.loads(figure.to_json())
        elif hasattr(figure, "to_dict") and not isinstance(figure, dict):
            figure = figure.to_dict()
        if not isinstance(figure, dict):
            raise ValueError("figure must be a plotly Figure or a dict with data and layout")
        self._sender().add(
            {
                "type": "plot",
                "title": title,
                "series": series,
                "iteration": int(iteration or 0),
                "figure": json.loads(json.dumps(figure, default=_jsonable), parse_constant=_none),
            }
        )

    def report_histogram(self, title, series, values, iteration=None, labels=None,
                         xlabels=None, xaxis=None, yaxis=None, mode=None, data_args=None,
                         extra_layout=None) -> None:  # fmt: skip
        """Bars of bins already counted in `values` (a vector, or one row per series)."""
        figure = report_figures.histogram(
            title, series, values, labels, xlabels, xaxis, yaxis, mode, data_args, extra_layout
        )
        self.report_plotly(title, series, figure, iteration)

    def report_vector(self, title, series, values, iteration=None, labels=None, xlabels=None,
                      xaxis=None, yaxis=None, mode=None, extra_layout=None) -> None:  # fmt: skip
        """ClearML's older name for report_histogram."""
        self.report_histogram(
            title, series, values, iteration, labels=labels, xlabels=xlabels, xaxis=xaxis,
            yaxis=yaxis, mode=mode, extra_layout=extra_layout,
        )  # fmt: skip

    def report_scatter2d(self, title, series, scatter, iteration=None, xaxis=None, yaxis=None,
                         labels=None, mode="lines", comment=None,
                         extra_layout=None) -> None:  # fmt: skip
        figure = report_figures.scatter2d(
            title, series, scatter, xaxis, yaxis, labels, mode, comment, extra_layout
        )
        self.report_plotly(title, series, figure, iteration)

    def report_scatter3d(self, title, series, scatter, iteration=None, xaxis=None, yaxis=None,
                         zaxis=None, labels=None, mode="markers", fill=False, comment=None,
                         extra_layout=None) -> None:  # fmt: skip
        figure = report_figures.scatter3d(
            title, series, scatter, xaxis, yaxis, zaxis, labels, mode, fill, comment, extra_layout
        )
        self.report_plotly(title, series, figure, iteration)

    def report_confusion_matrix(self, title, series, matrix, iteration=None, xaxis=None,
                                yaxis=None, xlabels=None, ylabels=None, yaxis_reversed=False,
                                comment=None, extra_layout=None) -> None:  # fmt: skip
        figure = report_figures.confusion_matrix(
            title, series, matrix, xaxis, yaxis, xlabels, ylabels, yaxis_reversed, comment,
            extra_layout,
        )  # fmt: skip
        self.report_plotly(title, series, figure, iteration)

    def report_matrix(self, title, series, matrix, iteration=None, xaxis=None, yaxis=None,
                      xlabels=None, ylabels=None, yaxis_reversed=False,
                      extra_layout=None) -> None:  # fmt: skip
        """ClearML's older name for report_confusion_matrix."""
        self.report_confusion_matrix(
            title, series, matrix, iteration, xaxis=xaxis, yaxis=yaxis, xlabels=xlabels,
            ylabels=ylabels, yaxis_reversed=yaxis_reversed, extra_layout=extra_layout,
        )  # fmt: skip

    def report_surface(self, title, series, matrix, iteration=None, xaxis=None, yaxis=None,
                       zaxis=None, xlabels=None, ylabels=None, camera=None, comment=None,
                       extra_layout=None) -> None:  # fmt: skip
        figure = report_figures.surface(
            title, series, matrix, xaxis, yaxis, zaxis, xlabels, ylabels, camera, comment,
            extra_layout,
        )  # fmt: skip
        self.report_plotly(title, series, figure, iteration)

    def report_line_plot(self, title, series, xaxis, yaxis, mode="lines", iteration=None,
                         reverse_xaxis=False, comment=None,
                         extra_layout=None) -> None:  # fmt: skip
        """Several lines in one plot: `series` is a list of SeriesInfo (or dicts of one)."""
        figure = report_figures.line_plot(
            title, series, xaxis, yaxis, mode, reverse_xaxis, comment, extra_layout
        )
        name = ""
        if series:
            first = series[0]
            name = str(first["name"] if isinstance(first, dict) else first.name)
        self.report_plotly(title, name, figure, iteration)

    def report_table(self, title: str, series: str, iteration: int | None = None,
                     table_plot=None, csv: str | None = None, url: str | None = None,
                     extra_layout: dict | None = None,
                     extra_data: dict | None = None) -> None:  # fmt: skip
        """A table: exactly one of a pandas DataFrame or a list of rows (`table_plot`, the
        first row the header), a CSV file (`csv`), or the URL of a CSV file (`url`)."""
        given = [name for name, v in (("table_plot", table_plot), ("csv", csv), ("url", url))
                 if v is not None]  # fmt: skip
        if len(given) != 1:
            raise ValueError(
                "report_table needs exactly one of table_plot, csv or url"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if csv is not None or url is not None:
            table_plot = _read_csv(csv if csv is not None else url)
        figure = report_figures.table(title, series, table_plot, extra_layout, extra_data)
        self.report_plotly(title, series, figure, iteration)

    def report_matplotlib_figure(
        self,
        title: str,
        series: str,
        figure: Any,
        iteration: int | None = None,
        report_image: bool = False,
        report_interactive: bool = True,
        **_: Any,
    ) -> None:
        """A matplotlib figure as an interactive plot (converted faithfully, or its PNG when
        it cannot be); `report_image=True` sends it as a debug sample instead."""
        from .mpl import figure_to_plotly, image_figure

        if report_image:
            figure = figure.gcf() if hasattr(figure, "gcf") else figure
            with tempfile.TemporaryDirectory(prefix="pipelines-figure-") as folder:
                path = Path(folder) / "figure.png"
                figure.savefig(path, format="png", dpi=figure.dpi)
                self.report_image(title, series, iteration, local_path=str(path))
            return
        converted = figure_to_plotly(figure) if report_interactive else image_figure(figure)
        self.report_plotly(title, series, converted, iteration)

    def report_image(self, title: str, series: str, iteration: int | None = None,
                     local_path: str | None = None, image=None, matrix=None,
                     max_image_history: int | None = None, delete_after_upload: bool = False,
                     url: str | None = None) -> None:  # fmt: skip
        """A debug sample: exactly one of a file path, a PIL image or numpy array (HxW or
        HxWx3/4), or the URL of an image already somewhere (kept as the URL)."""
        if image is None:
            image = matrix
        _one_of(local_path=local_path, image=image, url=url)
        if url:
            self._media_url(title, series, iteration, url, "", max_image_history)
            return
        with tempfile.TemporaryDirectory(prefix="pipelines-image-") as folder:
            path = Path(local_path) if local_path else Path(folder) / "image.png"
            if not local_path:
                _write_png(image, path)
            self._upload_media(title, series, iteration, path, max_image_history)
        if local_path and delete_after_upload:
            Path(local_path).unlink(missing_ok=True)

    def report_media(self, title: str, series: str, iteration: int | None = None,
                     local_path: str | None = None, stream=None,
                     file_extension: str | None = None, max_history: int | None = None,
                     delete_after_upload: bool = False,
                     url: str | None = None) -> None:  # fmt: skip
        """Images, audio, video or an HTML page: exactly one of a file, a stream (with its
        `file_extension`) or a URL (kept as the URL: nothing is downloaded)."""
        _one_of(local_path=local_path, stream=stream, url=url)
        if stream is not None and not file_extension:
            raise ValueError("report_media of a stream needs its file_extension")
        if url:
            self._media_url(title, series, iteration, url, "", max_history)
            return
        with tempfile.TemporaryDirectory(prefix="pipelines-media-") as folder:
            path = Path(local_path) if local_path else None
            if stream is not None:
                path = Path(folder) / f"media.{str(file_extension).lstrip('.')}"
                data = stream.read()
                path.write_bytes(data.encode() if isinstance(data, str) else data)
            self._upload_media(title, series, iteration, path, max_history)
        if local_path and delete_after_upload:
            Path(local_path).unlink(missing_ok=True)

    def _upload_media(self, title, series, iteration, path: Path, max_history) -> None:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._sender().flush()
        fields = {"title": title, "series": series, "iteration": str(int(iteration or 0))}
        if max_history and max_history > 0:
            fields["max_history"] = str(int(max_history))
        try:
            get_client().upload(
                f"tasks/{self._task_id}/samples/",
                path,
                method="POST",
                fields=fields,
                content_type=content_type,
            )
        except ApiError as error:
            # A refused sample (too large, not media) must not end the user's run.
            print(f"[pipelines] media {title}/{series} not stored: {error}", file=sys.stderr)

    def _media_url(self, title, series, iteration, url, content_type, max_history) -> None:
        self._sender().flush()
        try:
            get_client().post(
                f"tasks/{self._task_id}/samples/",
                {
                    "title": title,
                    "series": series,
                    "iteration": int(iteration or 0),
                    "url": str(url),
                    "content_type": content_type,
                    "max_history": int(max_history or 0),
                },
            )
        except ApiError as error:
            print(f"[pipelines] media {title}/{series} not stored: {error}", file=sys.stderr)


def _one_of(**given) -> None:
    present = [
        name
        for name, value in given.items()
        if value is not None and not (isinstance(value, str) and not value)
    ]
    if len(present) != 1:
        raise ValueError(f"give exactly one of {', '.join(given)} (got {present or 'none'})")


def _level(level) -> int:
    try:
        return int(level)
    except (TypeError, ValueError):
        return logging.INFO


def _read_csv(where: str):
    """A CSV file or URL as a DataFrame (its first column the index, as ClearML reads it)."""
    import pandas as pd

    from .storage import StorageManager

    local = where
    if "://" in str(where) and not str(where).startswith("file://"):
        local = StorageManager.get_local_copy(remote_url=str(where))
    elif str(where).startswith("file://"):
        local = str(where)[len("file://") :]
    try:
        return pd.read_csv(local, index_col=[0])
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise ValueError(f"cannot read the CSV table {where!r}: {error}") from error


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


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _none(_constant):
    """NaN and infinities in a figure become gaps (JSON has no such numbers)."""
    return None


@atexit.register
def _flush_all() -> None:
    for sender in list(Logger._senders.values()):
        try:
            sender.flush()
        except Exception:  # noqa: BLE001, S110 - exiting; nothing else to do
            pass
