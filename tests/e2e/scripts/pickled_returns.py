"""A step returns what only pickle can store (a set); the next one takes it. Run with the
steps as subprocesses here; the argument says whether the pipeline opts in to pickles."""

import sys

from pipelines import PipelineController

opt_in = sys.argv[1] == "opt-in"


def make():
    return {3, 1, 2}


def use(values):
    print("SORTED", sorted(values), flush=True)
    return len(values)


pipe = PipelineController(
    name=f"pickled returns {sys.argv[1]}", project="e2e-dynamic", allow_pickle=opt_in
)
pipe.add_function_step(name="make", function=make, function_return=["values"])
pipe.add_function_step(
    name="use", function=use, function_kwargs={"values": "${make.values}"}, function_return=["n"]
)
pipe.start_locally(run_pipeline_steps_locally=True)
print("RUN", pipe._run["id"], flush=True)
