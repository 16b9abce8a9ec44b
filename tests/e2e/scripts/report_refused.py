"""Reports what the server refuses (an oversized image, a model after the run ended): the
script must go on regardless, as ClearML's does."""

import sys
import tempfile
from pathlib import Path

import joblib
import numpy as np
from sklearn.linear_model import LinearRegression

from pipelines import Task

task = Task.init(project_name="e2e", task_name="refused")
logger = task.get_logger()
noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
logger.report_image("big", "noise", image=noise)  # about 12 KB of PNG: over the limit
logger.report_image("small", "dot", image=np.zeros((2, 2)))
task.mark_completed()  # a task that ended takes no more models
saved = Path(tempfile.mkdtemp()) / "late.pkl"
joblib.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), saved)
assert joblib.load(saved).coef_.shape == (1,)
print("still running", flush=True)
print("TASK_ID", task.id, file=sys.stderr, flush=True)
