"""The pipeline engine: starts a run, advances it whenever one of its steps changes state,
stops it and runs it again (as it was, or from any run with new parameter values, or from
one of its steps with edits, reusing the results above it), plans a run before it starts
(what would run, what be reused, and why); and
records the runs of controllers that drive their own steps (ClearML's), which it only
mirrors.

This is its whole interface; everything else in the package is private to it. The engine
follows task status changes through `on_task_status_changed`, which core's AppConfig
registers as a status listener (status.py), and asks the server worker for its own jobs by
name (_jobs.py), so no module of core imports it but those that call it.

How the package is laid out: _runs.py (the entry points that start, stop, rerun, add steps
to an open run, and resolve, launch or skip one step), _advance.py (what a change of a step
means for its run), _launch.py, _clones.py, _references.py and _cache.py (launching steps:
their overrides resolved, their tasks cloned and enqueued, cached results reused), _map.py
(fan-outs: a map step's items in batches added to the running run, and their results),
_claim.py (a claimed step shown running without the run's lock),
_view.py (the run as it is shown), _plot.py (its figures kept on its controller),
_rerun.py and _plan.py (a rerun from a step, and plans), _why.py (why a step ran or was
reused), _mirror.py (mirrored runs), _pass.py and _shape.py (the working state of one visit and what
never changes), _definition.py (checking a definition), _hooks.py and _jobs.py (status
changes in, jobs out).
"""

from ._advance import advance
from ._hooks import on_task_status_changed
from ._map import map_items, report_items
from ._mirror import mirror_run
from ._plot import refresh as refresh_plot
from ._rerun import plan_new, rerun_from
from ._runs import (
    add_steps,
    advance_all_running,
    close_definition,
    launch_step,
    rerun,
    resolve_step,
    skip_step,
    start_again,
    start_run,
    stop_run,
)
from ._view import RunView, run_view, step_view

__all__ = [
    "RunView",
    "add_steps",
    "advance",
    "advance_all_running",
    "close_definition",
    "launch_step",
    "map_items",
    "mirror_run",
    "on_task_status_changed",
    "plan_new",
    "refresh_plot",
    "report_items",
    "rerun",
    "rerun_from",
    "resolve_step",
    "run_view",
    "step_view",
    "skip_step",
    "start_again",
    "start_run",
    "stop_run",
]
