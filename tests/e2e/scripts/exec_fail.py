"""A step that fails with a traceback."""

from pipelines import Task

task = Task.init(project_name="e2e-exec", task_name="exec failing step")
task.connect({"depth": 3})
print("TASK_ID", task.id, flush=True)
task.execute_remotely()


def load_data(depth):
    if depth == 0:
        raise ValueError("the data file is corrupt")
    load_data(depth - 1)


print("about to fail")
load_data(3)
