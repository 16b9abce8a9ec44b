"""A decorator pipeline run as ClearML runs one by default: calling the pipeline function
on this machine enqueues its logic on `services`, and a worker re-runs this script, where
the logic calls the components, which run on workers of the steps' queue."""

import sys

from pipelines import Task
from pipelines.automation.controller import PipelineDecorator

# Arguments travel as parameters, so the re-run on a worker (which gets no argv) sees them.
task = Task.init(project_name="examples", task_name="decorator remote", task_type="controller")
given = dict(zip(["queue", "services"], sys.argv[1:], strict=False))
args = task.connect({"queue": "", "services": "", **given})


@PipelineDecorator.component(return_values=["doubled"])
def double(x):
    return 2 * x


@PipelineDecorator.pipeline(
    name="decorator remote", project="examples", pipeline_execution_queue=args["services"]
)
def logic(x):
    print("RESULT", double(double(x)), flush=True)


if __name__ == "__main__":
    PipelineDecorator.set_default_execution_queue(args["queue"])
    logic(x=10)
    print("LOGIC DONE", flush=True)
