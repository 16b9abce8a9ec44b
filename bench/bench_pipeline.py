"""The seed pipeline end to end vs the sum of its three scripts run directly."""

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import REPO, run_script, start_cluster

from . import peers
from .common import line, machine, summarize, write_result

EXAMPLE = REPO / "examples" / "pipeline_from_tasks"
STEPS = ["step1_dataset_artifact.py", "step2_data_processing.py", "step3_train_model.py"]


def _direct(cluster, env) -> float:
    """Each step's work run with plain `python` (attached to a fresh clone, as a worker
    would), one after the other: the floor for the pipeline."""
    total = 0.0
    previous = {}
    for script in STEPS:
        name = {
            "step1_dataset_artifact.py": "pipeline step 1 dataset artifact",
            "step2_data_processing.py": "pipeline step 2 process dataset",
            "step3_train_model.py": "pipeline step 3 train model",
        }[script]
        rows = cluster.get("tasks/", name=name, project_name="examples", status="created")
        base = rows["results"][0]
        params = {}
        if script == "step2_data_processing.py":
            params = {"General": {"dataset_url": previous["url"], "test_size": 0.25}}
        if script == "step3_train_model.py":
            params = {"General": {"dataset_task_id": previous["task"]}}
        clone = cluster.post(f"tasks/{base['id']}/clone/", {"hyperparameters": params})
        cluster.post(f"tasks/{clone['id']}/started/")
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, script],
            cwd=EXAMPLE,
            env={**env, "PIPELINES_TASK_ID": clone["id"]},
            capture_output=True,
            text=True,
        )
        total += time.perf_counter() - started
        assert result.returncode == 0, result.stderr
        artifacts = cluster.get(f"tasks/{clone['id']}/artifacts/")
        previous = {
            "task": clone["id"],
            "url": next((a["url"] for a in artifacts if a["name"] == "dataset"), ""),
        }
    return total


def run(repeats: int = 3) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as folder:
        cluster = start_cluster(Path(folder) / "cluster")
        try:
            env = cluster.server.sdk_env(MPLBACKEND="Agg")
            for script in STEPS:
                assert run_script(EXAMPLE / script, env).returncode == 0
            cluster.queues.add("default")
            cluster.start_worker("default", MPLBACKEND="Agg")
            pipelines, directs = [], []
            for _ in range(repeats + 1):
                started = time.perf_counter()
                result = run_script(EXAMPLE / "pipeline_from_tasks.py", env, timeout=600)
                pipelines.append(time.perf_counter() - started)
                assert result.returncode == 0 and re.search(r"\bdone\s*$", result.stdout)
                directs.append(_direct(cluster, env))
        finally:
            cluster.stop()
    pipe = summarize(pipelines[1:])
    direct = summarize(directs[1:])
    ratio = pipe["median"] / direct["median"]
    result = {
        "machine": machine(),
        "pipeline_seconds": pipe,
        "direct_seconds": direct,
        "ratio": ratio,
        "prefect": peers.prefect_seed(repeats),
    }
    print("seed pipeline (3 steps, one worker, embedded Redis, SQLite)")
    print(line("pipeline wall time (controller script), p50", pipe["median"], "s"))
    print(line("sum of the 3 scripts run directly, p50", direct["median"], "s"))
    print(line("ratio", ratio, "x", "<= 1.15"))
    if result["prefect"].get("seconds_median"):
        prefect = result["prefect"]["seconds_median"]
        print(line("the same work as a 3-task Prefect flow, p50", prefect, "s"))
        print(line("ratio to Prefect", pipe["median"] / prefect, "x"))
    else:
        print(f"  Prefect: {result['prefect']['note']}")
    write_result("pipeline", result)
    return result
