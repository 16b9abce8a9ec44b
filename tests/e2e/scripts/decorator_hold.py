"""A decorator pipeline whose one component holds (bounded) until a handshake file
exists: the test kills this script meanwhile. Arguments: queue, handshake folder."""

import sys

from pipelines.automation.controller import PipelineDecorator

queue, folder = sys.argv[1], sys.argv[2]


@PipelineDecorator.component(return_values=["held"])
def hold(folder):
    import time
    from pathlib import Path

    deadline = time.monotonic() + 60
    while not Path(folder, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "released"


@PipelineDecorator.pipeline(
    name="decorator hold", project="e2e-dynamic", pipeline_execution_queue=None
)
def logic(folder):
    print("HELD", hold(folder), flush=True)


if __name__ == "__main__":
    PipelineDecorator.set_default_execution_queue(queue)
    logic(folder)
