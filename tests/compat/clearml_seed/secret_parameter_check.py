"""Not part of ClearML's seed: a task whose parameters include a secret-looking one.

Run locally it registers a draft (or, with CHECK_QUEUE set, enqueues itself there and exits).
Run remotely it reads its parameters back from the server, as every remote ClearML task
does: the password must arrive unmasked, or the run fails with exit code 4. With `fail` set
it fails on purpose with exit code 3.
"""

import os
import sys

from clearml import Task

PASSWORD = "hunter2-but-longer"

task = Task.init(
    project_name=os.environ.get("CHECK_PROJECT", "examples"),
    task_name=os.environ.get("CHECK_NAME", "secret parameter check"),
)
args = {"db_password": PASSWORD, "note": "", "fail": os.environ.get("CHECK_FAIL") == "1"}
task.connect(args)
task.execute_remotely(queue_name=os.environ.get("CHECK_QUEUE") or None)

# From here on only on a worker: the task attached to by CLEARML_TASK_ID.
print(f"running as CLEARML_TASK_ID={os.environ.get('CLEARML_TASK_ID')} task={task.id}")
print(f"note: {args['note']!r}")
task.get_logger().report_scalar("check", "answer", value=42.0, iteration=1)
task.flush(wait_for_uploads=True)
if args["db_password"] != PASSWORD:
    print("password altered on its way to the task", file=sys.stderr)
    sys.exit(4)
print("password intact")
if args["fail"]:
    print("failing on purpose", file=sys.stderr)
    sys.exit(3)
