"""The iris pipeline of ClearML's "pipeline from functions" example, built with the calls
that example makes: each step is a plain Python function, added with
`PipelineController.add_function_step`; the pipeline detects each step's parents from the
`${step.return_value}` references in its kwargs, and each name in `function_return`
becomes an artifact of the step's task.

Run it once (`python pipeline_from_functions.py`): it registers the three functions as
draft tasks, starts the pipeline on the server and exits; workers on `default` run the
steps. `step_two` returns a tuple of pandas objects, stored pickled as ClearML does, so
`step_three` needs the pickle opt-in: run the controller with PIPELINES_ALLOW_PICKLE=1
(recorded in each step it registers), or pass `allow_pickle=True` to the controller.
"""

from pipelines import PipelineController


def iris_pickle_url():
    """Offline stand-in for the GitHub download: scikit-learn bundles the iris data set. It
    still reaches the step as a URL for StorageManager.get_local_copy()."""
    import pickle
    import tempfile
    from pathlib import Path

    from sklearn.datasets import load_iris

    path = Path(tempfile.mkdtemp()) / "iris_dataset.pkl"
    path.write_bytes(pickle.dumps(load_iris()))
    return path.as_uri()


# Each function below becomes a step of its own; the imports inside it run where the step
# runs, and the helper functions it calls (iris_pickle_url) travel with it.
def step_one(pickle_data_url):
    import pickle

    import pandas as pd

    from pipelines import StorageManager

    pickle_data_url = pickle_data_url or iris_pickle_url()
    local_iris_pkl = StorageManager.get_local_copy(remote_url=pickle_data_url)
    with open(local_iris_pkl, "rb") as f:
        iris = pickle.load(f)
    data_frame = pd.DataFrame(iris["data"], columns=iris["feature_names"])
    data_frame["target"] = iris["target"]
    return data_frame


def step_two(data_frame, test_size=0.2, random_state=42):
    from sklearn.model_selection import train_test_split

    y = data_frame["target"]
    X = data_frame[[c for c in data_frame.columns if c != "target"]]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=test_size, random_state=random_state
    )
    return X_train, X_test, y_train, y_test


def step_three(data):
    from sklearn.linear_model import LogisticRegression

    X_train, X_test, y_train, y_test = data
    model = LogisticRegression(max_iter=500)
    model.fit(X_train, y_train)
    print(f"test accuracy {model.score(X_test, y_test):.3f}")
    return model


if __name__ == "__main__":
    pipe = PipelineController(
        project="examples",
        name="Pipeline demo",
        version="1.1",
        add_pipeline_tags=False,
    )

    # the queue each step goes to unless it names its own
    pipe.set_default_execution_queue("default")

    # an empty URL: step_one builds the data set where it runs
    pipe.add_parameter(name="url", description="url to pickle file", default="")
    pipe.add_function_step(
        name="step_one",
        function=step_one,
        function_kwargs=dict(pickle_data_url="${pipeline.url}"),
        function_return=["data_frame"],
        cache_executed_step=True,
    )
    pipe.add_function_step(
        name="step_two",
        # parents=['step_one'] is found from the reference to step_one's return value
        function=step_two,
        function_kwargs=dict(data_frame="${step_one.data_frame}"),
        function_return=["processed_data"],
        cache_executed_step=True,
    )
    pipe.add_function_step(
        name="step_three",
        function=step_three,
        function_kwargs=dict(data="${step_two.processed_data}"),
        function_return=["model"],
        cache_executed_step=True,
    )

    # On the server: this returns at once, and the server runs the steps on workers.
    # pipe.start_locally(run_pipeline_steps_locally=True) runs them here, as subprocesses.
    pipe.start()

    print("pipeline started")
