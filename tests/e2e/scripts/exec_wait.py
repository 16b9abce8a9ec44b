"""A step that records its run, optionally starts a child, then waits for a go-ahead.

Each run appends "attempt=N pid=P overlap=0|1" to runs.txt in the handshake dir, where
overlap=1 means a process of an earlier run was still alive when this one started.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

from pipelines import Task

task = Task.init(project_name="e2e-exec", task_name="exec waiting step")
args = {"handshake_dir": "", "spawn_child": False, "wait_seconds": 60.0}
task.connect(args)
print("TASK_ID", task.id, flush=True)
task.execute_remotely()

folder = Path(args["handshake_dir"])
runs = folder / "runs.txt"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


lines = runs.read_text().splitlines() if runs.exists() else []
earlier = [int(line.split("pid=")[1].split()[0]) for line in lines]
overlap = int(any(alive(pid) for pid in earlier))
with open(runs, "a") as handle:
    handle.write(f"attempt={task.data['attempt']} pid={os.getpid()} overlap={overlap}\n")
if args["spawn_child"]:
    # A child that ignores SIGTERM: only the SIGKILL to the whole group takes it down.
    child = subprocess.Popen(
        ["sleep", "300"], preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN)
    )
    (folder / "child.pid").write_text(str(child.pid))
print(f"WAITING pid={os.getpid()}", flush=True)
deadline = time.monotonic() + args["wait_seconds"]
while not (folder / "go").exists():
    if time.monotonic() > deadline:
        raise SystemExit("no go-ahead in time")
    time.sleep(0.05)
print("GO")
