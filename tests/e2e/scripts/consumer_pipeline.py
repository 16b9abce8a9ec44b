"""A second pipeline, "dataset consumer" version 1.0: the seed's processing step alone,
reading the dataset from the URL in its `dataset_url` parameter (argv[1] by default)."""

import sys

from pipelines import Task
from pipelines.automation import PipelineController

task = Task.init(
    project_name="examples", task_name="dataset consumer", task_type=Task.TaskTypes.controller
)
pipe = PipelineController(
    name="dataset consumer", project="examples", version="1.0", default_execution_queue="default"
)
pipe.add_parameter("dataset_url", sys.argv[1])
pipe.add_step(
    name="process",
    base_task_project="examples",
    base_task_name="pipeline step 2 process dataset",
    parameter_override={"General/dataset_url": "${pipeline.dataset_url}", "General/test_size": 0.3},
)
pipe.start()
pipe.wait()
pipe.stop()
print("done")
