import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipelines import Task  # noqa: E402

task = Task.init(project_name="e2e", task_name="reporter")
logger = task.get_logger()
for i in range(10_000):
    series = ("loss", "accuracy", "odd")[i % 3]
    value = i * 0.5
    if series == "odd":
        value = (math.nan, math.inf, -math.inf, 1.5)[i % 4]
    logger.report_scalar("train", series, value, iteration=i)
logger.report_plotly(
    "custom", "bars", {"data": [{"type": "bar", "x": ["a", "b"], "y": [1, 2]}], "layout": {}}
)
plt.figure()
plt.plot([0, 1, 2], [3, 1, 2], label="curve")
plt.title("A curve")
plt.show()
logger.report_table("table", "frame", table_plot=pd.DataFrame({"x": [1, 2], "y": ["p", "q"]}))
logger.report_image("samples", "gradient", iteration=3, image=np.linspace(0, 1, 64).reshape(8, 8))
print("reported everything", flush=True)
print("TASK_ID", task.id, file=sys.stderr, flush=True)
