"""Starting, stopping and running again a pipeline run, adding steps to a run its script
builds as it goes (PipelineDecorator), resolving, launching or skipping one of its steps on
request (the SDK's start_locally() and callbacks), and the sweep's pass over running runs."""

import copy
import json
import logging

from django.db import connection, connections, transaction
from django.utils import timezone

from pipelines import dag

from .. import access, limits, services
from ..choices import (
    PIPELINE_TERMINAL,
    NodeStatus,
    PipelineDefinition,
    PipelineDriver,
    PipelineStatus,
    TaskStatus,
    TaskType,
)
from ..errors import Conflict, InvalidInput, NotFound
from ..models import PipelineNode, PipelineRun, Task
from ..presenters import read_overrides
from . import _jobs, _plot, _why
from ._advance import abort_remaining, advance, mirrored, release, step_nodes, sync_nodes
from ._definition import checked_steps
from ._launch import launch, resolved
from ._pass import Nodes, Pass, locked, nodes_with_tasks, one, run_nodes, set_node
from ._shape import retried_with_fresh_shape

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------- starting


def start_run(
    *,
    user,
    controller: Task,
    steps: list,
    parameters: dict | None = None,
    default_queue: str = "default",
    abort_on_failure: bool = False,
    driver: str = PipelineDriver.SERVER,
    visible_tasks=None,
    version: str = "",
    open_definition: bool = False,
    reused: dict | None = None,
    rerun_of: PipelineRun | None = None,
    rerun_from_step: str = "",
    checked: bool = False,
) -> PipelineRun:
    """Validate the whole definition, resolve base tasks, then create the run.

    `reused` maps steps to the nodes of `rerun_of` whose results the new run takes over
    (their tasks, shown cached, never run again): a rerun from `rerun_from_step`. Its steps
    come `checked`: the run's own, already clean, with its edits checked (_rerun.py).

    Nothing is cloned when anything is wrong: every error names the step and parameter.
    `version` (PipelineController's) is kept in the controller's runtime: a pipeline is
    named by its controller's project, name and version.

    With `open_definition` the run's script adds its steps as it goes (add_steps), so it
    may start with none, and it does not end before the script closes it (close_definition).
    """
    if not isinstance(steps, list) or (not steps and not open_definition):
        raise InvalidInput("a pipeline needs at least one step")
    if driver not in (PipelineDriver.SERVER, PipelineDriver.CLIENT):
        raise InvalidInput("driver must be 'server' or 'client'")
    if not isinstance(parameters or {}, dict):
        raise InvalidInput("parameters must be an object", field="parameters")
    parameters = dict(parameters or {})
    for name in parameters:
        limits.text("parameters", name, limits.PARAMETER_NAME_MAX)
    limits.json_value("parameters", parameters)
    default_queue = services.checked_queue_name(default_queue or "default", "default_queue")
    tasks = visible_tasks if visible_tasks is not None else Task.objects.all()
    clean = steps if checked else checked_steps(steps, parameters, tasks)
    if hasattr(controller, "pipeline_run"):
        raise Conflict(f"task {controller.id} already controls a pipeline run")
    with transaction.atomic():
        run = PipelineRun.objects.create(
            controller=controller,
            steps=clean,
            parameters=parameters,
            default_queue=default_queue or "default",
            abort_on_failure=abort_on_failure,
            driver=driver,
            open_nodes=len(clean) - len(reused or {}),
            definition=PipelineDefinition.OPEN if open_definition else PipelineDefinition.FIXED,
            rerun_of=rerun_of,
            rerun_from_step=rerun_from_step,
        )
        insert_nodes(
            [
                PipelineNode(
                    run=run,
                    name=step["name"],
                    position=index,
                    base_task_id=step["base_task_id"],
                    **_reused_fields((reused or {}).get(step["name"]), rerun_of, rerun_from_step),
                )
                for index, step in enumerate(clean)
            ]
        )
        if controller.status == TaskStatus.CREATED:
            services.mark_started(controller)
        services.edit_task(
            controller,
            {
                "runtime": {
                    **controller.runtime,
                    "pipeline_run": run.id,
                    **({"version": version} if version else {}),
                }
            },
        )
        transaction.on_commit(lambda: _jobs.advance_soon(run.id))
    return run


def insert_nodes(nodes: list) -> None:
    """Insert new nodes in one statement run for each (executemany), the values of a field
    the nodes share prepared once: Django's bulk_create prepares every field of every row,
    which for a 1,000-step run cost more than the rest of starting it."""
    fields = [field for field in PipelineNode._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    statement = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - names from the model
        quote(PipelineNode._meta.db_table),
        ", ".join(quote(field.column) for field in fields),
        ", ".join(["%s"] * len(fields)),
    )
    prepared: dict = {}
    database = connections[PipelineNode.objects.db]  # not the proxy: it is asked per value

    def value(field, node):
        raw = getattr(node, field.attname)
        key = (field.attname, json.dumps(raw, sort_keys=True, default=str))
        if key not in prepared:
            prepared[key] = field.get_db_prep_save(raw, database)
        return prepared[key]

    rows = [[value(field, node) for field in fields] for node in nodes]
    with connection.cursor() as cursor:
        cursor.executemany(statement, rows)


def _reused_fields(source: PipelineNode | None, rerun_of, step: str) -> dict:
    """A node that takes over `source`'s result: its task, shown cached and why."""
    if source is None:
        return {}
    return {
        "task_id": source.task_id,
        "status": NodeStatus.CACHED,
        "message": f"reused from run {rerun_of.pk}",
        "resolved_overrides": source.resolved_overrides,
        "cache_key": source.cache_key,
        "key_inputs": source.key_inputs,
        "decision": _why.reused_from(rerun_of.pk, source.task_id, step),
    }


@retried_with_fresh_shape(lambda run, *_args, **_kwargs: run.pk)
def add_steps(run: PipelineRun, steps: list, visible_tasks) -> list:
    """Add steps to a running run whose definition is open (its script calls components
    as it runs): checked with the steps it has, their nodes created, and launched by the
    engine as soon as their parents allow. Returns the checked steps."""
    if not isinstance(steps, list) or not steps:
        raise InvalidInput("give at least one step to add")
    with transaction.atomic():
        run = one(PipelineRun.objects.select_for_update().filter(pk=run.pk))
        if run is None:
            raise NotFound("pipeline run not found")
        if run.definition != PipelineDefinition.OPEN:
            raise Conflict("this run's steps were all given when it started")
        if run.status in PIPELINE_TERMINAL:
            raise Conflict(f"the run has ended ({run.status})")
        clean = checked_steps(steps, run.parameters, visible_tasks, existing=run.steps)
        position = len(run.steps)
        run.steps = [*run.steps, *clean]
        run.revision += 1
        run.open_nodes += len(clean)
        run.save(update_fields=["steps", "revision", "open_nodes"])
        PipelineNode.objects.bulk_create(
            [
                PipelineNode(
                    run=run,
                    name=step["name"],
                    position=position + i,
                    base_task_id=step["base_task_id"],
                )
                for i, step in enumerate(clean)
            ]
        )
        transaction.on_commit(lambda: _jobs.advance_soon(run.pk))
    return clean


def close_definition(run: PipelineRun) -> PipelineRun:
    """The script of an open run has added its last step: the run may end now."""
    with transaction.atomic():
        updated = PipelineRun.objects.filter(pk=run.pk, definition=PipelineDefinition.OPEN).update(
            definition=PipelineDefinition.CLOSED
        )
    if updated:
        advance(run.pk)
    return PipelineRun.objects.get(pk=run.pk)


def refuse_mirrored(run: PipelineRun) -> None:
    if mirrored(run):
        raise Conflict(f"pipeline run {run.pk} is driven by its ClearML controller")


# ---------------------------------------------------------------- one step on request


def resolve_step(run: PipelineRun, name: str) -> dict:
    """What a pending step's overrides resolve to now ({parameters, configuration}): what
    its pre_execute_callback is shown, before it launches it with them (or with its edits).
    Conflict names the reference that cannot be resolved yet."""
    run = one(PipelineRun.objects.defer("steps", "parameters").filter(pk=run.pk))
    if run is None:
        raise NotFound("pipeline run not found")
    refuse_mirrored(run)
    work = Pass(run)
    node = one(nodes_with_tasks(run).filter(name=name, map_step=""))
    if node is None:
        raise NotFound(f"pipeline has no step {name!r}")
    if node.status != NodeStatus.PENDING or node.task_id:
        raise Conflict(f"step {name!r} has already been launched ({node.status})")
    try:
        params, config = resolved(work, node, Nodes(work, [node]))
    except dag.UnresolvedReference as error:
        raise Conflict(f"cannot resolve {error.ref.text}: {error.reason}") from error
    # Masked like any reading of overrides; a mask given back to launch_step keeps its value.
    return {"parameters": read_overrides(params), "configuration": read_overrides(config)}


@retried_with_fresh_shape(lambda run, *_args, **_kwargs: run.pk)
def launch_step(
    run: PipelineRun,
    name: str,
    parameters: dict | None = None,
    configuration: dict | None = None,
    local: bool = False,
) -> PipelineNode:
    """Launch one pending step now (the SDK's start_locally() decides when).

    `parameters` and `configuration`, when given, are the step's values as its controller
    decided them (a pre_execute_callback's edits of what resolve_step showed), used as they
    are; with `local` its task is made a draft for the controller's process to run.
    """
    given = None
    if parameters is not None or configuration is not None:
        given = {name: (dict(parameters or {}), dict(configuration or {}))}
    with transaction.atomic():
        run = locked(run.pk)
        if run is None:
            raise NotFound("pipeline run not found")
        refuse_mirrored(run)
        if (given is not None or local) and run.driver != PipelineDriver.CLIENT:
            # The engine launches a server-driven run's steps as their parents end.
            raise Conflict(
                "only a run its controller drives takes a step's values or runs it there"
            )
        work = Pass(run)
        node = one(nodes_with_tasks(run).filter(name=name, map_step=""))
        if node is None:
            raise NotFound(f"pipeline has no step {name!r}")
        if local and work.shape.index.steps[name].get("map") is not None:
            raise InvalidInput(f"step {name!r} is a fan-out: its items run on workers")
        sync_nodes(work, {name: node})
        if node.status == NodeStatus.PENDING and not node.task_id:
            release(work, launch(work, [node], Nodes(work, [node]), given=given, local=local))
        # else: already launched, and launching twice is a no-op
        work.flush()
    return node


def skip_step(run: PipelineRun, name: str, reason: str = "skipped by callback") -> PipelineNode:
    with transaction.atomic():
        run = locked(run.pk)
        if run is None:
            raise NotFound("pipeline run not found")
        refuse_mirrored(run)
        work = Pass(run)
        node = one(run_nodes(run).filter(name=name, map_step=""))
        if node is None:
            raise NotFound(f"pipeline has no step {name!r}")
        if node.status == NodeStatus.PENDING and node.task_id is None:
            set_node(work, node, NodeStatus.SKIPPED, reason)
        work.flush()
    _jobs.advance_soon(run.pk)
    return node


# ---------------------------------------------------------------- stopping, running again


def stop_run(run_id: str, reason: str = "pipeline stopped") -> PipelineRun:
    """Abort what is still running, skip what has not started, mark the run stopped."""
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().defer("steps", "parameters").get(pk=run_id)
        if run.status in PIPELINE_TERMINAL:
            return run
        if mirrored(run):
            return _stop_mirrored_run(run, reason)
        work = Pass(run)
        nodes = step_nodes(run)
        sync_nodes(work, nodes)
        abort_remaining(work, nodes, reason)
        run.status = PipelineStatus.STOPPED
        run.completed = timezone.now()
        run.open_nodes = 0
        controller = Task.objects.get(pk=run.controller_id)
        if controller.status in (TaskStatus.IN_PROGRESS, TaskStatus.QUEUED):
            services.abort_task(controller, reason)
        _plot.write_final(run, work.shape, nodes, work.now)
        work.flush()
    return run


def rerun(run_id: str, *, user) -> PipelineRun:
    """Run an ended pipeline again on the server: a new controller task (same project, name,
    parameters and tags, its parent the old controller) and a new run of the same steps from
    the same base tasks, with the same pipeline parameters."""
    run = PipelineRun.objects.select_related("controller__project").get(pk=run_id)
    refuse_other_drivers(run)
    if run.status not in PIPELINE_TERMINAL:
        raise Conflict(f"the run is still {run.status}: wait for it to end or abort it first")
    return start_again(run, user=user)


def start_again(
    run: PipelineRun,
    *,
    user,
    parameters: dict | None = None,
    tags: list | None = None,
    runtime: dict | None = None,
    steps: list | None = None,
    reused: dict | None = None,
    from_step: str = "",
    checked: bool = False,
) -> PipelineRun:
    """A new run of `run`'s definition on the server, whatever state `run` is in (a schedule
    or a trigger starting a pipeline from its latest run): a new controller task like
    rerun()'s, with `parameters` overriding the run's (only parameters the pipeline has),
    `tags` added to the controller's and `runtime` recorded on it. A rerun from a step
    gives its edited `steps` and the nodes it `reused` (rerun_from)."""
    refuse_other_drivers(run)
    values = dict(run.parameters)
    unknown = sorted(set(parameters or {}) - set(values))
    if unknown:
        raise InvalidInput(
            f"the pipeline has no parameter(s) {', '.join(unknown)}", parameter=unknown[0]
        )
    values.update(parameters or {})
    old = run.controller
    kept = {key: value for key, value in old.runtime.items() if key == "version"}
    controller = services.create_task(
        user=user,
        project_name=old.project.name,
        name=old.name,
        task_type=TaskType.CONTROLLER,
        hyperparameters=copy.deepcopy(old.hyperparameters),
        configuration=copy.deepcopy(old.configuration),
        tags=[*old.tags, *(tag for tag in tags or [] if tag not in old.tags)],
        parent=old,
        start_running=True,
    )
    if kept or runtime:
        controller = services.edit_task(controller, {"runtime": {**kept, **(runtime or {})}})
    return start_run(
        user=user,
        controller=controller,
        # checked_steps cleans a copy of each step; checked ones are the caller's copies.
        steps=steps if steps is not None else run.steps,
        parameters=values,
        default_queue=run.default_queue,
        abort_on_failure=run.abort_on_failure,
        driver=PipelineDriver.SERVER,
        visible_tasks=access.visible_tasks(user),
        reused=reused,
        rerun_of=run if from_step else None,
        rerun_from_step=from_step,
        checked=checked,
    )


def refuse_other_drivers(run: PipelineRun) -> None:
    if mirrored(run):
        raise Conflict("this run follows a ClearML controller: run its controller script again")
    if run.driver == PipelineDriver.CLIENT:
        raise Conflict(
            "this run was driven by its script's Python callbacks, which only that script "
            "can run: run the script again"
        )
    if run.definition != PipelineDefinition.FIXED:
        raise Conflict(
            "this run's steps came from its script's logic as it ran (PipelineDecorator): "
            "run the script again"
        )


def _stop_mirrored_run(run, reason: str):
    """Stopping a run mirrored from a ClearML controller stops that controller and the steps
    it has running, as ClearML's `tasks.stop` with `include_pipeline_steps` does; the mirror
    then follows their statuses. Nothing is skipped or relaunched here."""
    active = (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS)
    controller = Task.objects.get(pk=run.controller_id)
    for task in [controller, *Task.objects.filter(parent=controller, status__in=active)]:
        if task.status in active:
            try:
                services.abort_task(task, reason)
            except Conflict:
                pass  # it ended meanwhile
    return run


# ---------------------------------------------------------------- the sweep


def advance_all_running() -> list[str]:
    runs = list(
        PipelineRun.objects.filter(status=PipelineStatus.RUNNING).values_list(
            "pk", "driver", "definition", "controller__status"
        )
    )
    for run_id, driver, definition, controller_status in runs:
        needs_controller = driver == PipelineDriver.CLIENT or definition == PipelineDefinition.OPEN
        try:
            if needs_controller and controller_status in (TaskStatus.FAILED, TaskStatus.STOPPED):
                # Only the controller's process launches the steps of a client-driven run,
                # or adds those of an open one: once it has ended (its worker died, its
                # script crashed) the run would otherwise stay running for ever.
                stop_run(run_id, f"the controller ended ({controller_status}) during the run")
            else:
                advance(run_id)
        except Exception:  # noqa: BLE001 - one broken run must not stop the sweep
            logger.exception("advancing pipeline run %s failed", run_id)
    return [run_id for run_id, *_ in runs]
