"""Function steps with ClearML's callbacks, started with start() (so, as ClearML does, the
controller is enqueued on `services` and re-run by a worker, which runs the callbacks):
second's pre_execute_callback sees its kwargs resolved and edits one; third's returns False,
skipping it and fourth; post_execute and status_change callbacks follow second."""

import sys

from pipelines import Task
from pipelines.automation import PipelineController

# Arguments travel as parameters, so the re-run on a worker (which gets no argv) sees them.
args = dict(zip(["queue", "services"], sys.argv[1:], strict=False))
task = Task.init(
    project_name="examples", task_name="pipeline callbacks resolved", task_type="controller"
)
args = task.connect({"queue": "", "services": "", **args})


def first():
    return 7


def second(source_id, size):
    print(f"SECOND got {source_id} {size}")
    return size * 2


def third(value):
    return value


def fourth(value):
    return value


def pre_second(pipeline, node, parameters):
    print(f"PRE {node.name} {sorted(parameters.items())}", flush=True)
    parameters["kwargs/size"] = 5  # the step runs with this value


def pre_third(pipeline, node, parameters):
    print(f"PRE {node.name} skipped", flush=True)
    return False


def post_second(pipeline, node):
    print(f"POST {node.name} {node.executed} {node.job.artifacts['doubled'].get()}", flush=True)


def status_second(pipeline, node, previous):
    print(f"STATUS {node.name} {previous}->{node.status}", flush=True)


pipe = PipelineController(default_execution_queue=args["queue"], add_pipeline_tags=False)
pipe.add_function_step(name="first", function=first, function_return=["value"])
pipe.add_function_step(
    name="second",
    function=second,
    function_kwargs={"source_id": "${first.id}", "size": 1},
    function_return=["doubled"],
    pre_execute_callback=pre_second,
    post_execute_callback=post_second,
    status_change_callback=status_second,
)
pipe.add_function_step(
    name="third",
    function=third,
    function_kwargs={"value": "${first.value}"},
    function_return=["value"],
    pre_execute_callback=pre_third,
)
pipe.add_function_step(name="fourth", function=fourth, function_kwargs={"value": "${third.value}"})
pipe.start(queue=args["services"])
pipe.wait()
pipe.stop()
print("CONTROLLER", task.id, "successful" if pipe.is_successful() else "failed", flush=True)
