"""MLflow's `log_batch` against a local `mlflow server`, for `python -m bench scalars`.

Run by the peers' interpreter: `python mlflow_scalars.py TRACKING_URI N`. Logs N metric
points of one run in batches of 1,000 (MLflow's limit per call) and prints the points per
second as its last line.
"""

import os
import sys
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

from mlflow.entities import Metric  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

BATCH = 1000


def main(uri: str, total: int) -> float:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment(f"bench-{time.time_ns()}")
    run = client.create_run(experiment)
    now = int(time.time() * 1000)
    points = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(total)]
    started = time.perf_counter()
    for offset in range(0, total, BATCH):
        client.log_batch(run.info.run_id, metrics=points[offset : offset + BATCH])
    elapsed = time.perf_counter() - started
    stored = client.get_metric_history(run.info.run_id, "loss")
    assert len(stored) == total, (len(stored), total)
    return total / elapsed


if __name__ == "__main__":
    print(f"{main(sys.argv[1], int(sys.argv[2])):.1f}", flush=True)
