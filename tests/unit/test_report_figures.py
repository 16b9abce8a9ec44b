"""Logger.report_* input is checked before anything is sent (R86)."""

import math

import numpy as np
import pandas as pd
import pytest

from pipelines import report_figures
from pipelines.logger import Logger


class _Recorder(Logger):
    def __init__(self):
        super().__init__("0" * 32)
        self.sent = []

    def _sender(self):
        return self

    def add(self, event):
        self.sent.append(event)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "exactly one of table_plot, csv or url"),
        ({"table_plot": [["a"]], "csv": "x.csv"}, "got table_plot, csv"),
        ({"table_plot": [["a", "b"], [1]]}, "as many cells as the header"),
        ({"table_plot": "a,b"}, "DataFrame or a list of rows"),
        ({"table_plot": []}, "non-empty list of rows"),
        ({"csv": "/nonexistent/table.csv"}, "cannot read the CSV table"),
    ],
)
def test_a_bad_table_is_refused_in_the_callers_line_and_nothing_is_sent(arguments, message):
    logger = _Recorder()
    with pytest.raises(ValueError, match=message):
        logger.report_table("t", "s", **arguments)
    assert logger.sent == []


def test_a_table_too_large_to_show_is_refused():
    frame = pd.DataFrame(np.zeros((report_figures.MAX_CELLS // 2 + 1, 2)))
    with pytest.raises(ValueError, match="the limit is"):
        _Recorder().report_table("t", "s", table_plot=frame)


def test_bad_matrices_and_scatters_are_refused_before_sending():
    logger = _Recorder()
    with pytest.raises(ValueError, match="numbers"):
        logger.report_confusion_matrix("c", "s", [["a", "b"]])
    with pytest.raises(ValueError, match="xlabels for 2 columns"):
        logger.report_confusion_matrix("c", "s", [[1, 2]], xlabels=["only one"])
    with pytest.raises(ValueError, match=r"\(x, y\) pairs"):
        logger.report_scatter2d("p", "s", [[1, 2, 3]])
    with pytest.raises(ValueError, match="exactly one of local_path, stream, url"):
        logger.report_media("m", "s")
    assert logger.sent == []


def test_tables_and_single_values_are_sent_as_clearml_shows_them():
    logger = _Recorder()
    frame = pd.DataFrame({"v": [1.0, math.nan]}, index=pd.Index(["a", "b"], name="key"))
    logger.report_table("t", "s", table_plot=frame)
    logger.report_table("t", "plain", table_plot=pd.DataFrame({"v": [1, 2]}))
    logger.report_single_value("accuracy", 0.5)
    table, plain, single = logger.sent
    assert table["figure"]["data"][0]["header"]["values"] == ["key", "v"]
    assert table["figure"]["data"][0]["cells"]["values"] == [["a", "b"], [1.0, "NaN"]]
    assert plain["figure"]["data"][0]["header"]["values"] == ["v"]
    assert single == {"type": "single_value", "name": "accuracy", "value": 0.5}
