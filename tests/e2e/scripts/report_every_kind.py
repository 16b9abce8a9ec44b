"""Reports every kind of result ClearML's Logger has, and saves a model with joblib."""

import io
import logging
import struct
import sys
import tempfile
import wave
from pathlib import Path

import joblib
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from pipelines import Logger, Task  # noqa: E402
from pipelines.model import InputModel, OutputModel  # noqa: E402

task = Task.init(project_name="e2e", task_name="every kind")
logger = task.get_logger()
work = Path(tempfile.mkdtemp())

logger.report_scalar("loss", "train", 0.5, iteration=1)
logger.report_single_value("accuracy", 0.93)
logger.report_single_value("f1", 0.88)
logger.report_histogram(
    "hist", "counts", [[1, 2, 3], [3, 2, 1]], labels=["a", "b"], xlabels=["x", "y", "z"]
)
logger.report_vector("vector", "v", [4, 5, 6])
logger.report_scatter2d(
    "scatter2d", "points", [[0, 1], [1, 3], [2, 2]], xaxis="x", yaxis="y", mode="markers"
)
logger.report_scatter3d("scatter3d", "points", [[0, 1, 2], [1, 2, 3]], zaxis="z")
logger.report_confusion_matrix(
    "confusion", "test", [[5, 1], [0, 7]], xlabels=["no", "yes"], ylabels=["no", "yes"]
)
logger.report_matrix("matrix", "m", np.eye(3))
logger.report_surface("surface", "s", np.outer(np.arange(4), np.arange(4)), zaxis="z")
logger.report_line_plot(
    "lines",
    [
        Logger.SeriesInfo(name="up", data=[[0, 0], [1, 1]]),
        {"name": "down", "data": [[0, 1], [1, 0]]},
    ],
    xaxis="x",
    yaxis="y",
)
logger.report_table("table", "frame", table_plot=pd.DataFrame({"v": [1, 2]}, index=["r1", "r2"]))
csv_path = work / "table.csv"
csv_path.write_text("name,score\nalice,3\nbob,4\n")
logger.report_table("table", "csv", csv=str(csv_path))
logger.report_table("table", "rows", table_plot=[["k", "v"], ["a", 1]])
logger.report_text("a text line", level=logging.WARNING, print_console=False)
logger.report_plotly(
    "plotly", "dict", {"data": [{"type": "bar", "x": ["a"], "y": [1]}], "layout": {}}
)
logger.report_image("image", "array", iteration=2, image=np.linspace(0, 1, 64).reshape(8, 8))
logger.report_image("image", "by url", url="http://127.0.0.1:9/picture.png")
audio = work / "tone.wav"
with wave.open(str(audio), "wb") as sound:
    sound.setnchannels(1)
    sound.setsampwidth(2)
    sound.setframerate(8000)
    sound.writeframes(b"".join(struct.pack("<h", (i % 40) * 500) for i in range(8000)))
logger.report_media("media", "audio", local_path=str(audio))
logger.report_media("media", "html", stream=io.StringIO("<h1>hello</h1>"), file_extension="html")
logger.report_media("media", "video by url", url="http://127.0.0.1:9/clip.mp4")

figure, ax = plt.subplots()
ax.scatter([1, 2, 3], [3, 1, 2], c=[0, 1, 2], cmap="viridis")
ax.set_title("shown")
plt.show()

model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
joblib.dump(model, work / "model.pkl")

weights = work / "weights.bin"
weights.write_bytes(b"\x00\x01" * 1000)
explicit = OutputModel(task=task, name="explicit", framework="PyTorch", tags=["best"])
explicit.update_weights(weights_filename=str(weights))
task.connect(InputModel(model_id=explicit.id), name="warm start")
copy = InputModel(model_id=explicit.id).get_local_copy(raise_on_error=True)
assert Path(copy).read_bytes() == weights.read_bytes()

task.add_tags(["reported"])
task.set_comment("every kind of result")
task.flush()
assert task.get_reported_single_values() == {"accuracy": 0.93, "f1": 0.88}
assert task.get_reported_scalars() == {"loss": {"train": {"x": [1], "y": [0.5]}}}
print("reported every kind", flush=True)
print("TASK_ID", task.id, file=sys.stderr, flush=True)
