"""A step that burns about one CPU second, half in itself and half in a child process of
its group, and holds about 40 MB while it does; with `wait_file`, it first waits for that
file to appear."""

import subprocess
import sys
import time

from pipelines import Task

task = Task.init(project_name="e2e-resources", task_name="burn cpu")
args = {"seconds": 0.5, "exit_code": 0, "wait_file": ""}
task.connect(args)
print("TASK_ID", task.id, flush=True)
task.execute_remotely()

if args["wait_file"]:
    from pathlib import Path

    for _ in range(1200):  # at most a minute
        if Path(args["wait_file"]).exists():
            break
        time.sleep(0.05)
    else:
        raise SystemExit("no go-ahead within a minute")

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"
hoard = bytearray(40 * 1024 * 1024)
hoard[::4096] = b"x" * len(hoard[::4096])  # touched, so it is resident
exec(BURN.format(s=float(args["seconds"])))  # noqa: S102 - the test's own burn loop
subprocess.run([sys.executable, "-c", BURN.format(s=float(args["seconds"]))], check=True)
print("BURNED", time.process_time(), flush=True)
raise SystemExit(int(args["exit_code"]))
