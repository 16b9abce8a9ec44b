"""The fan-out benchmark's controller script: one map step over `count` trivial items, in
tasks of `per_task` items on `queue`. Run by `python -m bench fanout`."""

import sys
import time

from pipelines import PipelineController

started = time.perf_counter()
queue, count, per_task = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def square(x):
    return x * x


pipe = PipelineController(name=f"fan out {count}", project="bench", default_execution_queue=queue)
pipe.add_map_step(
    name="square",
    function=square,
    items=list(range(count)),
    function_return=["y"],
    items_per_task=per_task,
)
pipe.start()
pipe.wait()
pipe.stop()
assert pipe.is_successful()
print("RUN", pipe._run["id"], flush=True)
print(f"{time.perf_counter() - started:.4f}", flush=True)
