"""Running an ended run again from one of its steps, with edits: the steps outside that
step's subtree that completed keep their results (the same tasks and artifacts, shown
reused from the run), the step and everything below it run with the edited parameters.
And the plans of such a rerun, or of a new run, before anything starts."""

import copy

from django.db import transaction

from pipelines import dag, parameters

from .. import access, secrets
from ..choices import PIPELINE_TERMINAL, NodeStatus, TaskStatus
from ..errors import Conflict, InvalidInput
from ..models import PipelineRun, Task
from . import _plan, _why
from ._definition import check_overrides, checked_steps
from ._pass import run_nodes
from ._runs import refuse_other_drivers, start_again

REUSABLE = (NodeStatus.COMPLETED, NodeStatus.CACHED)
REUSED_FIELDS = ("name", "status", "task", "resolved_overrides", "cache_key", "key_inputs")
EDITS_MAX = 1000


def rerun_from(
    run_id: str,
    *,
    user,
    step: str,
    parameter_override: dict | None = None,
    dry_run=False,
    token: str = "",
):
    """Start the new run (or, with `dry_run`, only say what it would do: its plan).

    `token` names one request to start (a page's form): sent twice (a double click), it
    answers the run the first one started instead of starting another."""
    if dry_run:
        return _rerun_from(run_id, user, step, parameter_override, True, token)
    with transaction.atomic():
        # Two requests with one token wait for each other here; the second finds the run.
        PipelineRun.objects.select_for_update().filter(pk=run_id).values_list("pk").first()
        if token:
            started = PipelineRun.objects.filter(
                rerun_of_id=run_id, controller__runtime__rerun_token=token
            ).first()
            if started is not None:
                return started
        return _rerun_from(run_id, user, step, parameter_override, False, token)


def _rerun_from(run_id, user, step, parameter_override, dry_run, token):
    run = PipelineRun.objects.select_related("controller__project").get(pk=run_id)
    refuse_other_drivers(run)
    if run.status not in PIPELINE_TERMINAL:
        raise Conflict(f"the run is still {run.status}: wait for it to end or abort it first")
    steps, reused = _prepared(run, step, parameter_override or {}, user)
    if dry_run:
        return _plan.plan(
            steps,
            run.parameters,
            project_id=run.controller.project_id,
            controller_name=run.controller.name,
            reused={
                name: (node.task, _why.reused_from(run.pk, node.task_id, step))
                for name, node in reused.items()
            },
        )
    return start_again(
        run,
        user=user,
        steps=steps,
        reused=reused,
        from_step=step,
        runtime={"rerun_token": token[:64]} if token else None,
        checked=True,
    )


def _prepared(run: PipelineRun, step: str, edits: dict, user) -> tuple[list, dict]:
    """The new run's steps (the run's, with `edits` applied) and the nodes it reuses.

    Their tasks are read light (the plan reads the few a rerun step refers to whole when it
    resolves them): a 1,000-step run's parameters and scripts cost more to decode than the
    rest of a plan."""
    index = dag.index_graph(run.steps)
    nodes = {
        node.name: node
        for node in run_nodes(run)
        .select_related("task")
        .only(*REUSED_FIELDS, "task__id", "task__status")
    }
    if step not in index.steps:
        if step in nodes:  # a fan-out's batch
            raise InvalidInput(f"{step!r} is a batch of a fan-out, not a step", step=step)
        raise InvalidInput(f"the run has no step {step!r}", step=step, parameter="step")
    rerun = {step, *dag.descendants(index, step)}
    # The run's steps were checked when it started and stay as they are (copies of the
    # edited ones): only the edits are checked here, so a rerun does not validate a
    # 1,000-step definition again. A deleted base task fails its step at launch.
    steps = [copy.deepcopy(s) if s["name"] in edits else s for s in run.steps]
    by_name = {s["name"]: s for s in steps}
    _apply_edits(by_name, rerun, step, edits, run.steps)
    reused = {
        name: node
        for name, node in nodes.items()
        if name in index.steps
        and name not in rerun
        and node.status in REUSABLE
        and node.task is not None
        and node.task.status in (TaskStatus.COMPLETED, TaskStatus.PUBLISHED)
    }
    # A literal edit needs its own checks; one that makes a reference, the whole graph's.
    if any(dag.parse_references(v) for values in edits.values() for v in values.values()):
        checked_steps(steps, run.parameters, access.visible_tasks(user))
    else:
        for name in edits:
            check_overrides(by_name[name])
    return steps, reused


def _apply_edits(by_name: dict, rerun: set, step: str, edits: dict, original: list) -> None:
    if not isinstance(edits, dict):
        raise InvalidInput(
            "parameter_override must be an object of steps", field="parameter_override"
        )
    bases = {
        t.pk: t
        for t in Task.objects.filter(pk__in={s["base_task_id"] for s in original}).only(
            "pk", "hyperparameters"
        )
    }
    count = 0
    for name, values in edits.items():
        if name not in by_name:
            raise InvalidInput(f"the run has no step {name!r}", step=name)
        if name not in rerun:
            raise InvalidInput(
                f"step {name!r} is not below {step!r}: its result is reused, not run again",
                step=name,
            )
        if not isinstance(values, dict):
            raise InvalidInput(f"step {name!r}: give its edits as an object", step=name)
        target = by_name[name]
        base = bases.get(str(target["base_task_id"]))
        known = {_full(key) for key in target["parameter_override"]}
        if base is not None:
            known |= set(parameters.flatten(base.hyperparameters))
        for key, value in values.items():
            count += 1
            if count > EDITS_MAX:
                raise InvalidInput(f"at most {EDITS_MAX} edits", field="parameter_override")
            if _full(key) not in known:
                raise InvalidInput(
                    f"step {name!r} has no parameter {key!r}", step=name, parameter=str(key)
                )
            if not isinstance(value, dag.OVERRIDE_VALUE_TYPES):
                raise InvalidInput(
                    f"step {name!r}, parameter {key!r}: a value must be a string, number, "
                    "boolean or null",
                    step=name,
                    parameter=str(key),
                )
            if value == secrets.MASK and secrets.is_sensitive(_full(key).rsplit("/", 1)[-1]):
                continue  # a secret shown masked and given back unchanged keeps its value
            overrides = target["parameter_override"]
            existing = next((k for k in overrides if _full(k) == _full(key)), key)
            overrides[existing] = value


def _full(key) -> str:
    key = str(key)
    return key if "/" in key else f"General/{key}"


def plan_new(*, user, project_name: str, name: str, steps: list, parameters: dict | None):
    """The plan of a run of a definition not started yet (the SDK's plan())."""
    if not isinstance(steps, list) or not steps:
        raise InvalidInput("a pipeline needs at least one step")
    clean = checked_steps(steps, dict(parameters or {}), access.visible_tasks(user))
    # Only a project the user sees: another team's earlier runs tell it nothing.
    project = access.visible_projects(user).filter(name=project_name).first()
    return _plan.plan(
        clean,
        dict(parameters or {}),
        project_id=project.pk if project else None,
        controller_name=name,
    )
