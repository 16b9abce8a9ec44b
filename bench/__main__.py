"""`python -m bench [name ...]`: run the benchmarks, print ratios, write bench/results/."""

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from .common import write_result

BENCHMARKS = [
    "dispatch",
    "pipeline",
    "fanout",
    "engine",
    "scalars",
    "dashboard",
    "run_page",
    "artifacts",
    "api",
    "idle",
    "capacity",
    "rerun",
]


def _engine() -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    sizes = os.environ.get("BENCH_ENGINE_SIZES", "100 1000 5000").split()
    output = subprocess.run(
        [sys.executable, "-m", "bench.engine_cost", *sizes],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
    ).stdout
    rows = json.loads(output.strip().splitlines()[-1])
    print("engine cost per step (server engine, SQLite; workers simulated, not counted)")
    for row in rows:
        print(
            f"  {row['shape']:<5} {row['steps']:>6} steps  {row['ms_per_step']:>7.3f} ms/step"
            f" (x{row['growth']:.2f})  cpu {row['cpu_ms_per_step']:.3f} ms"
            f" (x{row['cpu_growth']:.2f})  {row['queries_per_step']:.1f} queries"
            f" (x{row['queries_growth']:.2f})   target <= 5 ms, linear"
        )
        print(
            f"        plot refresh job: {row['plot_refreshes']} runs,"
            f" {row['plot_refresh_ms']:.1f} ms each, {row['plot_share']:.1%} of engine time"
        )
    print("  (xN: per-step cost relative to the smallest size of the same shape)")
    write_result("engine", {"rows": rows})
    return {"rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"any of: {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    failures = []
    for name in args.names or BENCHMARKS:
        print(f"\n== {name} ==", flush=True)
        try:
            if name == "engine":
                _engine()
            else:
                importlib.import_module(f"bench.bench_{name}").run()
        except ModuleNotFoundError as error:
            print(f"  skipped: {error}")
        except Exception as error:  # noqa: BLE001 - report and go on to the next benchmark
            print(f"  FAILED: {error}")
            failures.append(name)
    print(f"\nresults in {Path(__file__).resolve().parent / 'results'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
