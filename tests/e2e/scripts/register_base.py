from pipelines import Task

task = Task.init(project_name="e2e", task_name="base step")
args = {"dataset_url": "", "test_size": 0.2, "epochs": 3, "verbose": True, "layers": [8, 4]}
task.connect(args)
print("TASK_ID", task.id, flush=True)
task.execute_remotely()
raise SystemExit("execute_remotely() must not return on a dev machine")
