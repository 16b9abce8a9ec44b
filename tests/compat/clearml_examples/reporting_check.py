"""Reports scalars, single values, an image and media by URL through the official SDK, then
reads them back through the SDK (written for this project's tests, not one of ClearML's
examples); prints one JSON line the test checks."""

import json

import numpy as np
from clearml import Task

task = Task.init(project_name="reporting checks", task_name="reporting read back")
logger = task.get_logger()
for iteration, value in enumerate([5.0, 1.0, 9.0, 3.0]):
    logger.report_scalar("loss", "train", value=value, iteration=iteration)
logger.report_single_value("accuracy", 0.75)
logger.report_image("samples", "noise", iteration=0, image=np.zeros((8, 8, 3), dtype=np.uint8))
for n in range(3):
    logger.report_media("pages", f"page {n}", iteration=0, url=f"https://example.com/p{n}.html")
    logger.report_media("clips", f"clip {n}", iteration=0, url=f"https://example.com/c{n}.mp4")
task.flush(wait_for_uploads=True)
task.close()

done = Task.get_task(task_id=task.id)
last = done.get_last_scalar_metrics()
pages = [s["url"] for n in range(3) for s in done.get_debug_samples("pages", f"page {n}")]
clips = [s["url"] for n in range(3) for s in done.get_debug_samples("clips", f"clip {n}")]
print(
    "RESULT "
    + json.dumps(
        {
            "id": task.id,
            "last": last.get("loss", {}).get("train"),
            "scalars": done.get_reported_scalars().get("loss", {}).get("train"),
            "single": done.get_reported_single_values(),
            "image": [s["url"] for s in done.get_debug_samples("samples", "noise")],
            "pages": pages,
            "clips": clips,
            "results_page": done.get_output_log_web_page(),
        }
    )
)
