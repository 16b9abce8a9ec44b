"""The seed's controller with `cache_executed_step` on stage_data: plan() first, then
start() and wait(); prints the plan and the run's id."""

import json
from dataclasses import asdict

from pipelines import Task
from pipelines.automation.controller import PipelineController

task = Task.init(project_name="examples", task_name="pipeline demo", task_type="controller")
pipe = PipelineController(default_execution_queue="default", add_pipeline_tags=False)
pipe.add_step(
    name="stage_data",
    base_task_project="examples",
    base_task_name="pipeline step 1 dataset artifact",
    cache_executed_step=True,
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
)
pipe.add_step(
    name="stage_train",
    parents=["stage_process"],
    base_task_project="examples",
    base_task_name="pipeline step 3 train model",
    parameter_override={"General/dataset_task_id": "${stage_process.id}"},
)
plan = pipe.plan()
print(plan, flush=True)
print("PLAN " + json.dumps([asdict(step) for step in plan.steps]), flush=True)
pipe.start()
pipe.wait()
pipe.stop()
print(f"CONTROLLER {pipe.id}", flush=True)
