"""A controller for three fault steps a -> b -> c, as the seed's controller is written.

argv: base task id, step queue, handshake dir, mode, services queue. Mode `server` hands the
run to the server (start(); wait(); stop()); mode `callbacks` adds a pre-execute callback,
so start() enqueues this script on the services queue and a worker drives the run; mode
`local` drives it from this process (start_locally()); mode `detach` calls start() and exits.
"""

import sys

from pipelines import Task
from pipelines.automation import PipelineController

# Arguments travel as parameters, so the re-run on a worker (which gets no argv) sees them.
names = ["base", "queue", "folder", "mode", "services"]
args = dict(zip(names, sys.argv[1:], strict=False))
task = Task.init(
    project_name="e2e-faults",
    task_name=f"fault controller {args.get('mode')}",
    task_type="controller",
)
args = task.connect({name: "" for name in names} | args)
print("CONTROLLER", task.id, flush=True)

callbacks = {}
if args["mode"] == "callbacks":
    callbacks["pre_execute_callback"] = lambda pipeline, node, parameters: True

pipe = PipelineController(default_execution_queue=args["queue"], add_pipeline_tags=False)
for name, parents, mode in (("a", [], "wait"), ("b", ["a"], "wait"), ("c", ["b"], "record")):
    pipe.add_step(
        name=name,
        parents=parents,
        base_task_id=args["base"],
        parameter_override={
            "General/mode": mode,
            "General/handshake_dir": args["folder"],
            "General/go_file": f"go-{name}",
        },
        **callbacks,
    )
if args["mode"] == "local":
    pipe.start_locally()
else:
    pipe.start(queue=args["services"] or "services")
    if args["mode"] == "detach":
        print("DETACHED", flush=True)
        raise SystemExit(0)
    pipe.wait()
pipe.stop()
print("PIPELINE ENDED", flush=True)
