"""The capacity benchmark's harness (bench/), run small and bounded by count: its load
reaches a real lane, and what it says was acknowledged is what the database holds."""

import tempfile
from pathlib import Path

import pytest

from bench import bench_capacity
from bench.capacity_load import run_load

pytestmark = pytest.mark.e2e


def test_the_capacity_harness_measures_every_kind_and_counts_what_was_stored():
    sizes = {"workers": 3, "pipelines": 1, "clients": 2, "step_workers": 1}
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as folder:
        cluster, queue = bench_capacity.start_lane("sqlite", Path(folder), sizes["step_workers"])
        try:
            plan = bench_capacity.plan_for(
                cluster,
                queue,
                sizes,
                warmup=0.0,
                duration=None,
                until_counts={"heartbeat": 3, "worker presence": 3, "scalars": 2, "console": 2},
                until_pipelines=1,
            )
            # the worker timings are the real worker's defaults, derived from the lease
            assert plan.heartbeat_seconds == pytest.approx(5.0)
            assert plan.presence_seconds == pytest.approx(10.0)
            recorder = run_load(plan)
            stored = bench_capacity.stored_counts(cluster, plan)
        finally:
            cluster.stop()
    result = bench_capacity.summarize_load(recorder, recorder.window_end - recorder.window_start)
    assert {"heartbeat", "worker presence", "scalars", "console", "pipeline poll"} <= set(
        result["kinds"]
    )
    assert result["pipelines_completed"] >= 1 and result["pipelines_failed"] == 0
    assert result["leases_lost"] == 0
    assert result["scalars_acked"] == stored["scalars"] > 0
    assert result["console_lines_acked"] == stored["console_lines"] > 0
    assert stored["simulated_still_running"] == sizes["workers"]
