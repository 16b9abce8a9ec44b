import sys

import numpy as np
import pandas as pd

from pipelines import Task

task = Task.init(project_name="e2e", task_name="producer")
array = np.arange(12, dtype=np.float64).reshape(3, 4)
array[0, 0] = np.nan
frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, 1.5, np.inf]})
with open(sys.argv[1], "wb") as handle:
    handle.write(b"raw bytes \x00\x01\x02" * 1000)
task.upload_artifact("array", array)
task.upload_artifact("config", {"lr": 0.1, "layers": [1, 2], "name": "net"})
task.upload_artifact("frame", frame)
task.upload_artifact("blob", sys.argv[1])
task.upload_artifact("../../escape", "text that must stay inside the storage root")
task.upload_artifact("obj", {1: complex(1, 2)})
print("TASK_ID", task.id, flush=True)
