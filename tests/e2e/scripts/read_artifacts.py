import sys

import numpy as np
import pandas as pd

from pipelines import Task
from pipelines.serialization import PickleNotAllowedError

producer = Task.get_task(project_name="e2e", task_name="producer")
artifacts = producer.artifacts
array = artifacts["array"].get()
expected = np.arange(12, dtype=np.float64).reshape(3, 4)
expected[0, 0] = np.nan
np.testing.assert_array_equal(array, expected)
assert artifacts["config"].get() == {"lr": 0.1, "layers": [1, 2], "name": "net"}
frame = artifacts["frame"].get()
pd.testing.assert_frame_equal(
    frame, pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, 1.5, np.inf]})
)
with open(artifacts["blob"].get(), "rb") as handle:
    assert handle.read() == open(sys.argv[1], "rb").read()
assert artifacts["../../escape"].get() == "text that must stay inside the storage root"
try:
    artifacts["obj"].get()
except PickleNotAllowedError as error:
    assert "allow_pickle=True" in str(error) and "PIPELINES_ALLOW_PICKLE=1" in str(error)
else:
    raise AssertionError("a pickle was loaded without the opt-in")
assert artifacts["obj"].get(allow_pickle=True) == {1: complex(1, 2)}
print("ALL EQUAL")
