import sys
import time
from pathlib import Path

from pipelines import Task

progress = Path(sys.argv[1])
task = Task.init(project_name="e2e", task_name="outage reporter")
logger = task.get_logger()
print("TASK_ID", task.id, flush=True)
for i in range(3000):
    logger.report_scalar("metric", "value", float(i), iteration=i)
    if i % 100 == 0:
        progress.write_text(str(i))
        time.sleep(0.05)
progress.write_text("done")
