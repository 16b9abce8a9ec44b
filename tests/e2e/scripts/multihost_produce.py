"""A step that makes an artifact; the server keeps its bytes in S3 (tests/e2e/test_multihost.py)."""

from pipelines import Task

task = Task.init(project_name="e2e-multihost", task_name="multihost produce")
args = {"label": ""}
task.connect(args)
print("TASK_ID", task.id, flush=True)
task.execute_remotely()

task.upload_artifact("data", {"label": args["label"], "values": list(range(100))})
print("PRODUCED", args["label"])
