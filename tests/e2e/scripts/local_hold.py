"""A pipeline whose one step runs as a subprocess of this controller and holds (bounded)
until a handshake file exists, after writing its pid: the test kills this controller
meanwhile. Argument: the handshake folder."""

import sys

from pipelines import PipelineController

folder = sys.argv[1]


def hold(folder):
    import os
    import time
    from pathlib import Path

    Path(folder, "step.pid").write_text(str(os.getpid()))
    deadline = time.monotonic() + 60
    while not Path(folder, "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "released"


pipe = PipelineController(name="local hold", project="e2e-dynamic")
pipe.add_function_step(name="hold", function=hold, function_kwargs={"folder": folder})
pipe.start_locally(run_pipeline_steps_locally=True)
