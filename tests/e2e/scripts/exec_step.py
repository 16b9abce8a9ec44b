"""A step that reports, waits for the test's go-ahead, and stores an artifact."""

import time
from pathlib import Path

from pipelines import Task

task = Task.init(project_name="e2e-exec", task_name="exec step")
args = {"learning_rate": 0.1, "handshake_dir": "", "label": "base"}
task.connect(args)
print("TASK_ID", task.id, flush=True)
task.execute_remotely()

print(f"STEP STARTED lr={args['learning_rate']!r} type={type(args['learning_rate']).__name__}")
print(f"label={args['label']}")
go = Path(args["handshake_dir"]) / "go"
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        raise SystemExit("no go-ahead within 60s")
    time.sleep(0.05)
task.upload_artifact("result", {"learning_rate": args["learning_rate"], "label": args["label"]})
print("STEP DONE")
