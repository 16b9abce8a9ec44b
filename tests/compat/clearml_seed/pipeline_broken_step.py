from clearml.automation import PipelineController

# The seed's pipeline with one step broken on purpose (the conformance test's failure path):
# stage_process is pointed at a dataset URL that does not exist, so it fails, the pipeline
# fails, and stage_train is never created.

# Connecting ClearML with the current pipeline,
# from here on everything is logged automatically
# (clearml 2.x names the pipeline in the constructor and sets the queue with a setter; the
# seed's older `PipelineController(default_execution_queue=...)` no longer exists)
pipe = PipelineController(
    name="pipeline broken step", project="examples", version="0.0.1", add_pipeline_tags=False
)
pipe.set_default_execution_queue("default")

pipe.add_step(
    name="stage_data",
    base_task_project="examples",
    base_task_name="pipeline step 1 dataset artifact",
)
pipe.add_step(
    name="stage_process",
    parents=[
        "stage_data",
    ],
    base_task_project="examples",
    base_task_name="pipeline step 2 process dataset",
    parameter_override={
        "General/dataset_url": "${stage_data.artifacts.dataset.url}.missing",
        "General/test_size": 0.25,
    },
)
pipe.add_step(
    name="stage_train",
    parents=[
        "stage_process",
    ],
    base_task_project="examples",
    base_task_name="pipeline step 3 train model",
    parameter_override={"General/dataset_task_id": "${stage_process.id}"},
)

# Starting the pipeline (in the background)
pipe.start()
# Wait until pipeline terminates
pipe.wait()
# cleanup everything
pipe.stop()

print("done")
