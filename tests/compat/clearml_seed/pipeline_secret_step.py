from clearml.automation import PipelineController

# Not part of ClearML's seed: a one-step pipeline whose step has a secret-looking parameter.
# The controller reads the clone of its step (masked, it does not run it), overrides `note`
# and saves the parameters whole; the step must still see its real password.
pipe = PipelineController(
    name="pipeline secret step", project="examples", version="0.0.1", add_pipeline_tags=False
)
pipe.set_default_execution_queue("default")
pipe.add_step(
    name="check",
    base_task_project="examples",
    base_task_name="secret parameter check",
    parameter_override={"General/note": "set by the pipeline"},
)
pipe.start()
pipe.wait()
pipe.stop()
print("done")
