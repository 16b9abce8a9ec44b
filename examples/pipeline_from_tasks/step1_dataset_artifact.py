import pickle
import tempfile
from pathlib import Path

from sklearn.datasets import load_iris

from pipelines import StorageManager, Task

# Connecting pipelines
task = Task.init(project_name="examples", task_name="pipeline step 1 dataset artifact")

# only create the task, it will be executed remotely later
task.execute_remotely()

# Offline stand-in for the seed's GitHub download: scikit-learn bundles the iris data set.
# It still travels through StorageManager.get_local_copy() of a URL, as the seed's does.
iris_url = (Path(tempfile.mkdtemp()) / "iris_dataset.pkl").as_uri()
with open(iris_url[len("file://") :], "wb") as iris_file:
    pickle.dump(load_iris(), iris_file)

# simulate local dataset, download one, so we have something local
local_iris_pkl = StorageManager.get_local_copy(remote_url=iris_url)

# add and upload local file containing our toy dataset
task.upload_artifact("dataset", artifact_object=local_iris_pkl)

print("uploading artifacts in the background")

# we are done
print("Done")
