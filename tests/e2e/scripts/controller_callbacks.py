"""The seed controller with ClearML's callbacks: they run in this process (start_locally)."""

import sys

from pipelines import Task
from pipelines.automation import PipelineController

# Arguments travel as parameters, so the re-run on a worker (which gets no argv) sees them.
args = dict(zip(["mode", "queue", "services"], sys.argv[1:], strict=False))
task = Task.init(
    project_name="examples",
    task_name=f"pipeline callbacks {args.get('mode')}",
    task_type="controller",
)
args = task.connect({"mode": "", "queue": "", "services": "", **args})


def pre_execute(pipeline, node, parameters):
    print(f"PRE {node.name} {sorted(parameters)}", flush=True)
    return node.name != "stage_train"  # skip the last step and its subtree


def post_execute(pipeline, node):
    print(f"POST {node.name} {node.executed}", flush=True)


pipe = PipelineController(default_execution_queue=args["queue"], add_pipeline_tags=False)
pipe.add_step(
    name="stage_data",
    base_task_project="examples",
    base_task_name="pipeline step 1 dataset artifact",
    pre_execute_callback=pre_execute,
    post_execute_callback=post_execute,
)
pipe.add_step(
    name="stage_process",
    parents=["stage_data"],
    base_task_project="examples",
    base_task_name="pipeline step 2 process dataset",
    parameter_override={
        "General/dataset_url": "${stage_data.artifacts.dataset.url}",
        "General/test_size": 0.25,
    },
    pre_execute_callback=pre_execute,
    post_execute_callback=post_execute,
)
pipe.add_step(
    name="stage_train",
    parents=["stage_process"],
    base_task_project="examples",
    base_task_name="pipeline step 3 train model",
    parameter_override={"General/dataset_task_id": "${stage_process.id}"},
    pre_execute_callback=pre_execute,
)
if args["mode"] == "locally":
    pipe.start_locally()
else:
    pipe.start(queue=args["services"])
pipe.wait()
pipe.stop()
print("CONTROLLER", task.id, "successful" if pipe.is_successful() else "failed", flush=True)
