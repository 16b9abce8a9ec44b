"""1,000 trivial items mapped with Prefect's `task.map`, for `python -m bench fanout`.

Run by the peers' interpreter (it imports prefect, not this project). Arguments: the item
count, and `persist` to have Prefect store each item's result as well as its state (what
our side records of every item). Prints the seconds inside the flow (the map and its
results), then the seconds of the whole command so far, as its last line.
"""

import os
import sys
import tempfile
import time

# Offline and quiet: no telemetry, no update checks, a throwaway local database.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Its ephemeral API server may take longer than the default 20 s to come up on a loaded
# machine: give it the time rather than fail the run.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

started = time.perf_counter()

from prefect import flow, task  # noqa: E402

COUNT = int(sys.argv[1])
PERSIST = len(sys.argv) > 2 and sys.argv[2] == "persist"


@task(persist_result=PERSIST)
def square(x: int) -> int:
    return x * x


@flow(name="fan out")
def fan_out(count: int) -> tuple[list, float]:
    begun = time.perf_counter()
    futures = square.map(range(count))
    results = [future.result() for future in futures]
    return results, time.perf_counter() - begun


if __name__ == "__main__":
    results, inside = fan_out(COUNT)
    assert results == [x * x for x in range(COUNT)]
    print(f"{inside:.4f}", flush=True)
    print(f"{time.perf_counter() - started:.4f}", flush=True)
