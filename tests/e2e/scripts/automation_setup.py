"""Set up a schedule or trigger as a user's script would, through the SDK's ClearML names.

argv[1] is JSON: {"class": "TaskScheduler" | "TriggerScheduler", "method": ..., "kwargs": {...}}.
"""

import json
import sys

from pipelines.automation import TaskScheduler, TriggerScheduler

spec = json.loads(sys.argv[1])
scheduler = {"TaskScheduler": TaskScheduler, "TriggerScheduler": TriggerScheduler}[spec["class"]]()
getattr(scheduler, spec["method"])(**spec["kwargs"])
scheduler.start()
