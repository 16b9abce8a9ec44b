"""Reruns, plans and diffs of 1,000-step runs against a real server, server worker and step
worker: the diff of two runs, the plan of a rerun and of a new definition, and how long a
rerun from a step near the root takes to start its first step on a worker.

Targets (issue 17): diff < 300 ms, plan < 200 ms, first step started < 1 s."""

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import REPO, start_cluster, wait_until

from .common import line, machine, repeat, summarize, write_result

SIZE = 1000
STEP = REPO / "tests" / "e2e" / "scripts" / "register_base.py"


def _timed(call) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    assert response.ok, response.text[:500]
    return elapsed


def run(size: int = SIZE, repeats: int = 7) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as folder:
        cluster = start_cluster(Path(folder) / "cluster")
        try:
            return _measure(cluster, size, repeats)
        finally:
            cluster.stop()


def _measure(cluster, size: int, repeats: int) -> dict:
    server, api = cluster.server, cluster.server.api()
    queue = cluster.queue("rerun")
    base_id = cluster.register(STEP)
    env = {**server.env, "CELERY_BROKER_URL": "memory://"}
    seeding = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "bench.rerun_seed", base_id, queue, str(size)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
    ).stdout
    seeded = json.loads(re.search(r"SEEDED (.*)", out).group(1))
    print(f"  seeded two {size}-step runs in {time.perf_counter() - seeding:.0f} s: {seeded}")
    a, b = seeded["a"], seeded["b"]
    url = f"{server.url}/api/v1/pipelines"

    diff = summarize(repeat(lambda: _timed(lambda: api.get(f"{url}/{b}/diff/?other={a}")), repeats))
    body = {
        "step": "s1",
        "parameter_override": {"s1": {"General/test_size": 0.35}},
        "dry_run": True,
    }
    plan = summarize(
        repeat(lambda: _timed(lambda: api.post(f"{url}/{b}/rerun_from/", json=body)), repeats)
    )
    steps = api.get(f"{url}/{a}/").json()["steps"]
    definition = {"project": "bench-rerun", "name": "tree pipeline", "steps": steps}
    plan_new = summarize(
        repeat(lambda: _timed(lambda: api.post(f"{url}/plan/", json=definition)), repeats)
    )

    cluster.start_worker(queue)
    starts = []
    for attempt in range(3):
        body = {
            "step": "s1",
            "parameter_override": {"s1": {"General/test_size": 0.4 + attempt / 100}},
        }
        started = time.perf_counter()
        response = api.post(f"{url}/{b}/rerun_from/", json=body)
        assert response.status_code == 201, response.text[:500]
        controller = response.json()["controller"]

        def first_step_running(controller=controller):
            rows = api.get(
                f"{server.url}/api/v1/tasks/",
                params={"parent": controller, "status": "in_progress", "page_size": 1},
            ).json()
            return rows["count"] > 0 or None

        wait_until(first_step_running, timeout=60, interval=0.01, message="first step running")
        starts.append(time.perf_counter() - started)
        api.post(f"{url}/{response.json()['id']}/stop/")
    start = summarize(starts)

    print(line(f"diff of two {size}-step runs (median)", diff["median"] * 1000, "ms", "< 300 ms"))
    print(
        line(
            f"plan of a rerun from s1 ({size} steps, median)",
            plan["median"] * 1000,
            "ms",
            "< 200 ms",
        )
    )
    print(
        line(
            f"plan of a new {size}-step definition (median)",
            plan_new["median"] * 1000,
            "ms",
            "< 200 ms",
        )
    )
    print(
        line(
            "rerun from s1: POST to its first step running (median)",
            start["median"] * 1000,
            "ms",
            "< 1000 ms",
        )
    )
    result = {
        "size": size,
        "diff_s": diff,
        "plan_rerun_s": plan,
        "plan_definition_s": plan_new,
        "rerun_first_step_running_s": start,
        "machine": machine(),
    }
    write_result("rerun", result)
    return result
