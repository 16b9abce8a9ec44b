"""A fan-out of 10 items in tasks of 5, one of whose items holds (bounded) until a
handshake file exists, so the test can kill the worker running it. At least half the items
must succeed. Arguments: queue, handshake folder."""

import sys

from pipelines.automation import PipelineController

queue, folder = sys.argv[1], sys.argv[2]


def work(x, folder):
    import time
    from pathlib import Path

    if x == 7:
        Path(folder, "entered").touch()
        deadline = time.monotonic() + 60
        while not Path(folder, "go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return x + 100


pipe = PipelineController(name="fan out held", project="e2e-dynamic", default_execution_queue=queue)
pipe.add_map_step(
    name="work",
    function=work,
    items=list(range(10)),
    function_kwargs={"folder": folder},
    function_return=["y"],
    items_per_task=5,
    min_success_ratio=0.5,
)
pipe.start()
print("RUN", pipe._run["id"], flush=True)
