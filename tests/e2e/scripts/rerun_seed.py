"""Plan, then rerun an ended seed run from stage_process with test_size 0.3, through the
SDK as a user would; prints the plan, the new run and its diff as JSON lines."""

import json
import sys
from dataclasses import asdict

from pipelines import PipelineController

run_id, step, value = sys.argv[1], sys.argv[2], float(sys.argv[3])
edits = {step: {"General/test_size": value}}
plan = PipelineController.rerun(run_id, from_step=step, parameter_override=edits, dry_run=True)
print(plan, flush=True)
print("PLAN " + json.dumps([asdict(s) for s in plan.steps]), flush=True)
run = PipelineController.rerun(run_id=run_id, from_step=step, parameter_override=edits)
print(f"RERUN {run.id} of {run.rerun_of}", flush=True)
assert run.wait(timeout=5), "the rerun did not end"
print("NODES " + json.dumps(run.nodes), flush=True)
print("DIFF " + json.dumps(run.diff(run_id)), flush=True)
