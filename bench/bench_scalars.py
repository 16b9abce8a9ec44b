"""Scalars per second end to end over HTTP; report_scalar cost in the caller; final flush."""

import json
import tempfile
from pathlib import Path

from tests.support import start_server

from . import peers
from .common import line, machine, run_python, summarize, write_result

REPORTER = """
import json, time
from pipelines import Task
task = Task.init(project_name="bench", task_name="scalars")
logger = task.get_logger()
logger.report_scalar("warm", "up", 0.0, 0); logger.flush()
N = {n}
t0 = time.perf_counter()
for i in range(N):
    logger.report_scalar("train", ("loss", "acc", "lr")[i % 3], i * 0.001, iteration=i)
t_report = time.perf_counter() - t0
logger.flush()
t_total = time.perf_counter() - t0
t1 = time.perf_counter()
for i in range(10_000):
    logger.report_scalar("tail", "x", float(i), iteration=i)
logger.flush()
t_flush = time.perf_counter() - t1
print(json.dumps({{"n": N, "report_s": t_report, "total_s": t_total, "flush10k_s": t_flush}}))
"""


def run(n: int = 100_000, repeats: int = 3) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-scalars-") as folder:
        server = start_server(Path(folder) / "server")
        try:
            runs = [
                json.loads(run_python(REPORTER.format(n=n), server.sdk_env()).splitlines()[-1])
                for _ in range(repeats)
            ]
        finally:
            server.stop()
            server.drop_database()
    rates = summarize([r["n"] / r["total_s"] for r in runs])
    per_call_us = summarize([r["report_s"] / r["n"] * 1e6 for r in runs])
    flush = summarize([r["flush10k_s"] for r in runs])
    result = {
        "machine": machine(),
        "scalars_per_second": rates,
        "report_scalar_us": per_call_us,
        "flush_10k_seconds": flush,
        "mlflow": peers.mlflow_log_batch(n, repeats),
    }
    print("scalars (end to end over HTTP, SQLite)")
    print(line("scalars/s (median)", rates["median"], "/s", ">= 20000"))
    print(line("report_scalar() in the caller", per_call_us["median"], "us", "<= 50"))
    print(line("final flush of 10,000 points", flush["median"], "s", "<= 1"))
    if result["mlflow"].get("scalars_per_second"):
        ratio = rates["median"] / result["mlflow"]["scalars_per_second"]
        print(line("ratio to MLflow log_batch", ratio, "x"))
    else:
        print(f"  MLflow: {result['mlflow']['note']}")
    write_result("scalars", result)
    return result
