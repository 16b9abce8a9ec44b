"""Step dispatch: enqueue -> step subprocess running, and one step's total overhead over
running the same script directly with `python`."""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import start_cluster, wait_until

from .common import line, machine, summarize, write_result

STEP = """import sys, time
open({marker!r}, "w").write(repr(time.time()))
"""


def _direct_run(script: Path, marker: Path) -> tuple[float, float]:
    """(interpreter start -> first line, total) for `python script.py` on this machine."""
    started = time.time()
    subprocess.run([sys.executable, str(script)], check=True)
    ended = time.time()
    return float(marker.read_text()) - started, ended - started


def _ended(cluster, task_id: str) -> str | None:
    status = cluster.task(task_id)["status"]
    return status if status in ("completed", "failed") else None


def run(samples: int = 30) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-dispatch-") as folder:
        root = Path(folder)
        cluster = start_cluster(root / "cluster")
        try:
            queue = cluster.queue("bench")
            cluster.start_worker(queue)
            marker = root / "started"
            script = root / "step.py"
            script.write_text(STEP.format(marker=str(marker)))
            base = cluster.post(
                "tasks/",
                {
                    "project_name": "bench",
                    "name": "dispatch",
                    "script": {"entry_point": "step.py", "code": script.read_text()},
                },
            )
            direct, latencies, totals = [], [], []
            # One kept-alive connection, as the SDK's client holds one.
            session = cluster.server.api()
            api, q = f"{cluster.server.url}/api/v1", queue
            for index in range(samples + 3):
                # Interleaved with the dispatches, so both see the same load on the machine.
                if index >= 3:
                    direct.append(_direct_run(script, marker))
                clone = cluster.post(f"tasks/{base['id']}/clone/", {"name": "dispatch"})
                marker.unlink(missing_ok=True)
                enqueued = time.time()
                response = session.post(f"{api}/tasks/{clone['id']}/enqueue/", json={"queue": q})
                assert response.ok, response.text
                wait_until(marker.exists, timeout=30, interval=0.001)
                wait_until(lambda c=clone: marker.read_text(), timeout=5, interval=0.001)
                started = float(marker.read_text())
                done = wait_until(
                    lambda c=clone: _ended(cluster, c["id"]), timeout=30, interval=0.002
                )
                finished = time.time()
                assert done == "completed", done
                if index >= 3:  # warm-up
                    latencies.append(started - enqueued)
                    totals.append(finished - enqueued)
        finally:
            cluster.stop()
    startup = summarize([d[0] for d in direct])
    direct_total = summarize([d[1] for d in direct])
    raw = summarize([x * 1000 for x in latencies])
    net = summarize([(x - startup["median"]) * 1000 for x in latencies])
    overhead = summarize([(t - direct_total["median"]) * 1000 for t in totals])
    result = {
        "machine": machine(),
        "enqueue_to_first_line_ms": raw,
        "python_startup_ms": {k: v * 1000 for k, v in startup.items() if k != "n"},
        "dispatch_ms": net,
        "direct_run_ms": {k: v * 1000 for k, v in direct_total.items() if k != "n"},
        "step_overhead_ms": overhead,
    }
    print("step dispatch (embedded Redis, SQLite, one worker)")
    print(line("enqueue -> script's first line, p50", raw["median"], "ms"))
    print(line("  of which Python's own start-up (direct run)", startup["median"] * 1000, "ms"))
    print(line("dispatch (enqueue -> subprocess started), p50", net["median"], "ms", "<= 15"))
    print(line("dispatch, p95", net["p95"], "ms"))
    print(
        line("step total overhead over `python step.py`, p50", overhead["median"], "ms", "<= 100")
    )
    write_result("dispatch", result)
    return result
