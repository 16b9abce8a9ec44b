"""The seed pipeline's work as a 3-task Prefect flow, for `python -m bench pipeline`.

Run by the peers' interpreter (it imports prefect, not this project). The tasks do what the
seed's three step scripts do: build the iris pickle, split it, train and score a model, and
save the same plot. Prints the flow's wall time in seconds as its last line.
"""

import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

# Offline and quiet: no telemetry, no update checks, a throwaway local database.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

started = time.perf_counter()

from prefect import flow, task  # noqa: E402


@task
def stage_data() -> str:
    from sklearn.datasets import load_iris

    path = Path(tempfile.mkdtemp()) / "iris_dataset.pkl"
    path.write_bytes(pickle.dumps(load_iris()))
    return str(path)


@task
def stage_process(dataset: str, test_size: float = 0.25, random_state: int = 42):
    from sklearn.model_selection import train_test_split

    iris = pickle.loads(Path(dataset).read_bytes())  # noqa: S301 - the file stage_data wrote
    return train_test_split(iris.data, iris.target, test_size=test_size, random_state=random_state)


@task
def stage_train(split) -> float:
    import joblib
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.linear_model import LogisticRegression

    x_train, x_test, y_train, y_test = split
    model = LogisticRegression(solver="liblinear")
    model.fit(x_train, y_train)
    model_path = Path(tempfile.mkdtemp()) / "model.pkl"
    joblib.dump(model, model_path, compress=True)
    score = joblib.load(model_path).score(x_test, y_test)
    plt.figure(1, figsize=(4, 3))
    plt.scatter(x_test[:, 0], x_test[:, 1], c=y_test, edgecolors="k", cmap=plt.cm.Paired)
    plt.savefig(model_path.with_suffix(".png"))
    return score


@flow(name="pipeline demo")
def pipeline_demo() -> float:
    dataset = stage_data()
    split = stage_process(dataset)
    return stage_train(split)


if __name__ == "__main__":
    score = pipeline_demo()
    assert score > 0.5, score
    print(f"{time.perf_counter() - started:.4f}", flush=True)
    sys.exit(0)
