"""A step that reads its parents' artifacts, records its run and waits for a go-ahead.

Each run appends "attempt=N pid=P overlap=0|1" to runs.txt in the handshake dir (overlap=1:
a process of an earlier run was still alive when this one started), and once the go file is
there it uploads what it read as the artifact "joined".
"""

import os
import time
from pathlib import Path

from pipelines import Task

task = Task.init(project_name="e2e-multihost", task_name="multihost join")
args = {"handshake_dir": "", "first": "", "second": "", "wait_seconds": 60.0}
task.connect(args)
print("TASK_ID", task.id, flush=True)
task.execute_remotely()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


folder = Path(args["handshake_dir"])
runs = folder / "runs.txt"
earlier = [
    int(line.split("pid=")[1].split()[0])
    for line in (runs.read_text().splitlines() if runs.exists() else [])
]
read = [
    Task.get_task(task_id=args[n]).artifacts["data"].get()["label"] for n in ("first", "second")
]
with open(runs, "a") as handle:
    overlap = int(any(alive(pid) for pid in earlier))
    handle.write(f"attempt={task.data['attempt']} pid={os.getpid()} overlap={overlap}\n")
deadline = time.monotonic() + args["wait_seconds"]
while not (folder / "go").exists():
    if time.monotonic() > deadline:
        raise SystemExit("no go-ahead in time")
    time.sleep(0.05)
task.upload_artifact("joined", {"read": read})
print("JOINED", read)
