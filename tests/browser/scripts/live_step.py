"""A step that reports in rounds: scalars, a plot, a debug sample and console lines, then
waits for the file go-N in the handshake dir before the next round (a test watches the
dashboard grow between rounds)."""

import time
from pathlib import Path

import numpy as np

from pipelines import Task

task = Task.init(project_name="browser-live", task_name="live step")
args = {"handshake_dir": "", "rounds": 2, "points": 40, "wait_seconds": 120.0}
task.connect(args)
print("TASK_ID", task.id, flush=True)
task.execute_remotely()

folder = Path(args["handshake_dir"])
logger = task.get_logger()
for round_ in range(int(args["rounds"])):
    for i in range(int(args["points"])):
        iteration = round_ * int(args["points"]) + i
        logger.report_scalar("loss", "train", 1.0 / (iteration + 1), iteration=iteration)
        logger.report_scalar("loss", "validation", 1.2 / (iteration + 1), iteration=iteration)
    logger.report_plotly(
        "progress", "rounds", {"data": [{"type": "bar", "y": list(range(1, round_ + 2))}]}, round_
    )
    shade = np.full((8, 8), 40 * (round_ + 1), dtype=np.uint8)
    logger.report_image("samples", "round", iteration=round_, image=shade)
    print(f"round {round_} done", flush=True)
    logger.flush()
    (folder / f"reported-{round_}").touch()
    go = folder / f"go-{round_}"
    deadline = time.monotonic() + float(args["wait_seconds"])
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"no {go.name} within {args['wait_seconds']}s")
        time.sleep(0.05)
print("all rounds done", flush=True)
