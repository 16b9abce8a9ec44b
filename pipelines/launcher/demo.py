"""`pipelines demo`: register the seed example's base tasks, then run its pipeline."""

import os
import subprocess
import sys
from pathlib import Path

from ..client import get_client

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipeline_from_tasks"
STEPS = ("step1_dataset_artifact.py", "step2_data_processing.py", "step3_train_model.py")
CONTROLLER = "pipeline_from_tasks.py"


def _run(script: str, timeout: float) -> None:
    print(f"$ python {script}", flush=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PIPELINES_TASK_ID", None)
    result = subprocess.run(
        [sys.executable, script], cwd=EXAMPLE, env=env, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"{script} exited with {result.returncode}")


def run_demo(timeout: float = 900) -> int:
    """Runs the scripts exactly as a user would; returns 0 when the pipeline completed."""
    if not EXAMPLE.is_dir():
        print(f"example folder not found: {EXAMPLE}", file=sys.stderr)
        return 1
    for step in STEPS:
        _run(step, timeout=120)
    _run(CONTROLLER, timeout=timeout)
    client = get_client()
    runs = client.get("pipelines/", page_size=1)["results"]
    if not runs:
        print("the pipeline did not start", file=sys.stderr)
        return 1
    run = runs[0]
    print(f"\npipeline {run['name']!r}: {run['status']}")
    print(f"  run:        {client.base}/pipelines/runs/{run['id']}/")
    print(f"  controller: {client.base}/tasks/{run['controller']}/")
    return 0 if run["status"] == "completed" else 1
