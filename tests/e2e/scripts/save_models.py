"""Saves models (and data) with pickle, joblib, torch and Keras inside a task.

argv[1]: "on" (the default capture) or "off" (Task.init(auto_connect_frameworks=False)).
"""

import importlib.util
import pickle
import sys
import tempfile
from pathlib import Path

import joblib
from sklearn.linear_model import LinearRegression

from pipelines import Task

mode = sys.argv[1]
task = Task.init("e2e", f"save models {mode}", auto_connect_frameworks=mode != "off")
# imported after Task.init: patched the moment they are imported
import torch  # noqa: E402

work = Path(tempfile.mkdtemp())
estimator = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
with open(work / "estimator.pickle", "wb") as handle:
    pickle.dump(estimator, handle)
with open(work / "rows.pickle", "wb") as handle:
    pickle.dump({"rows": [1, 2, 3]}, handle)  # data, not a model
joblib.dump([1, 2, 3], work / "numbers.joblib")  # data, not a model
torch.save(torch.nn.Linear(2, 1).state_dict(), work / "net.pt")
if importlib.util.find_spec("keras") is not None:
    import keras

    keras.Sequential([]).save(work / "classifier.keras")
print("saved", flush=True)
print("TASK_ID", task.id, file=sys.stderr, flush=True)
