"""A fan-out of 1,000 trivial items end to end, items per second, beside the same map in
Prefect (`task.map`) in the same run.

Ours: the controller script (bench/fanout_pipeline.py) defines one map step over the
items, starts it and waits for its end; two step workers run its tasks, each task
`BENCH_FANOUT_PER_TASK` items; every item's status and result is recorded on the server
(checked after each run: all completed, each result the square of its item, in order).
Timed as the whole command, as Prefect's is (interpreter start, imports, the run); the map
itself is timed too, from the map node's first batch launched to its collector's end.
"""

import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

from tests.support import run_script, start_cluster

from . import peers
from .common import BENCH, line, machine, summarize, write_result

COUNT = int(os.environ.get("BENCH_FANOUT_ITEMS", "1000"))
# One task per worker: trivial items cost nothing beside a task's start.
PER_TASK = int(os.environ.get("BENCH_FANOUT_PER_TASK", "500"))
WORKERS = 2


def _check(cluster, run_id: str) -> float:
    """Every item completed with its result, in order; returns the map's own seconds."""
    run = cluster.get(f"pipelines/{run_id}/")
    assert run["status"] == "completed", run
    items = []
    while len(items) < COUNT:
        page = cluster.get(f"pipelines/{run_id}/items/", step="square", offset=len(items))
        items.extend(page["items"])
    assert [(i["index"], i["status"], i["values"]["y"]) for i in items] == [
        (n, "completed", n * n) for n in range(COUNT)
    ]
    node = run["nodes"][0]
    collector = cluster.task(node["task"])
    first = min(cluster.task(task)["created"] for task in {item["task"] for item in items})
    return (_time(collector["completed"]) - _time(first)).total_seconds()


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def run(repeats: int = 3) -> dict:
    walls, maps = [], []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as folder:
        cluster = start_cluster(Path(folder) / "cluster")
        try:
            queue = cluster.queue("fanout")
            for _ in range(WORKERS):
                cluster.start_worker(queue)
            env = cluster.server.sdk_env()
            for _ in range(repeats + 1):
                started = time.perf_counter()
                result = run_script(
                    BENCH / "fanout_pipeline.py",
                    env,
                    timeout=600,
                    args=[queue, str(COUNT), str(PER_TASK)],
                )
                walls.append(time.perf_counter() - started)
                assert result.returncode == 0, result.stderr[-3000:]
                run_id = result.stdout.split("RUN ")[1].split()[0]
                maps.append(_check(cluster, run_id))
        finally:
            cluster.stop()
    wall, inside = summarize(walls[1:]), summarize(maps[1:])
    result = {
        "machine": machine(),
        "items": COUNT,
        "items_per_task": PER_TASK,
        "workers": WORKERS,
        "wall_seconds": wall,
        "map_seconds": inside,
        "items_per_second": COUNT / wall["median"],
        "map_items_per_second": COUNT / inside["median"],
        "prefect": peers.prefect_map(COUNT, repeats),
    }
    print(f"fan-out of {COUNT} trivial items ({PER_TASK} per task, {WORKERS} workers)")
    print(line("end to end (controller script), p50", wall["median"], "s"))
    print(line("items per second, end to end", result["items_per_second"], "/s"))
    print(line("the map alone (first task made to results collected)", inside["median"], "s"))
    prefect = result["prefect"]
    if prefect.get("seconds_median"):
        rate = COUNT / prefect["seconds_median"]
        print(line("Prefect task.map, whole command, p50", prefect["seconds_median"], "s"))
        print(line("ratio to Prefect, end to end", result["items_per_second"] / rate, "x", ">= 3"))
        print(line("Prefect's map alone (inside the flow)", prefect["map_seconds_median"], "s"))
        if prefect.get("persisted_seconds_median"):
            print(
                line(
                    "Prefect with results persisted, whole command",
                    prefect["persisted_seconds_median"],
                    "s",
                )
            )
    else:
        print(f"  Prefect: {prefect['note']}")
    write_result("fanout", result)
    return result
