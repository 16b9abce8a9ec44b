"""The iris pipeline of ClearML's "pipeline from decorator" example, built with the calls
that example makes: each component is a decorated function that runs as a task of its
own; the pipeline function is plain Python logic whose component calls return at once,
and a result is only waited for (and loaded) where the logic uses it.

`PipelineDecorator.run_locally()` runs the steps as subprocesses of this script, each still
a task with its console and artifacts; without it the logic runs on a `services` worker and
the steps on workers of the default queue (`PipelineDecorator.set_default_execution_queue`).
The model is stored pickled, as ClearML does, so loading it needs the pickle opt-in: run
with PIPELINES_ALLOW_PICKLE=1, or pass `allow_pickle=True` to `PipelineDecorator.pipeline`.
"""

from pipelines import TaskTypes
from pipelines.automation.controller import PipelineDecorator


def iris_pickle_url():
    """Offline stand-in for the GitHub download: scikit-learn bundles the iris data set. It
    still reaches step_one as a URL for StorageManager.get_local_copy()."""
    import pickle
    import tempfile
    from pathlib import Path

    from sklearn.datasets import load_iris

    path = Path(tempfile.mkdtemp()) / "iris_dataset.pkl"
    path.write_bytes(pickle.dumps(load_iris()))
    return path.as_uri()


# A component runs as a task of its own: the imports inside it run where it runs, and each
# of its return_values becomes an artifact of that task.
@PipelineDecorator.component(
    return_values=["data_frame"], cache=True, task_type=TaskTypes.data_processing
)
def step_one(pickle_data_url: str, extra: int = 43):
    print("step_one")
    import pickle

    import pandas as pd

    from pipelines import StorageManager

    local_iris_pkl = StorageManager.get_local_copy(remote_url=pickle_data_url)
    with open(local_iris_pkl, "rb") as f:
        iris = pickle.load(f)
    data_frame = pd.DataFrame(iris["data"], columns=iris["feature_names"])
    data_frame["target"] = iris["target"]
    return data_frame


# Several return values: the call returns one stand-in for each, stored as four artifacts.
@PipelineDecorator.component(
    return_values=["X_train", "X_test", "y_train", "y_test"],
    cache=True,
    task_type=TaskTypes.data_processing,
)
def step_two(data_frame, test_size=0.2, random_state=42):
    print("step_two")
    from sklearn.model_selection import train_test_split

    y = data_frame["target"]
    X = data_frame[[c for c in data_frame.columns if c != "target"]]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state
    )
    return X_train, X_test, y_train, y_test


@PipelineDecorator.component(return_values=["model"], cache=True, task_type=TaskTypes.training)
def step_three(X_train, y_train):
    print("step_three")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500)
    model.fit(X_train, y_train)
    return model


@PipelineDecorator.component(return_values=["accuracy"], cache=True, task_type=TaskTypes.qc)
def step_four(model, X_data, Y_data):
    from sklearn.metrics import accuracy_score

    Y_pred = model.predict(X_data)
    return accuracy_score(Y_data, Y_pred, normalize=True)


# The pipeline's logic: the component calls return at once; only where a result is used
# (printed, multiplied) does the logic wait for its step and load what it returned.
@PipelineDecorator.pipeline(name="custom pipeline logic", project="examples", version="0.0.5")
def executing_pipeline(pickle_url, mock_parameter="mock"):
    print("pipeline args:", pickle_url, mock_parameter)

    print("launch step one")
    data_frame = step_one(pickle_url)

    # step_two is given step_one's artifact: nothing is waited for or loaded here
    print("launch step two")
    X_train, X_test, y_train, y_test = step_two(data_frame)

    print("launch step three")
    model = step_three(X_train, y_train)

    # printing the model waits for step_three and loads its model
    print("returned model: {}".format(model))

    print("launch step four")
    accuracy = 100 * step_four(model, X_data=X_test, Y_data=y_test)

    print(f"Accuracy={accuracy}%")


if __name__ == "__main__":
    # PipelineDecorator.set_default_execution_queue('default') would run the steps on workers
    PipelineDecorator.run_locally()

    executing_pipeline(pickle_url=iris_pickle_url())

    print("process completed")
