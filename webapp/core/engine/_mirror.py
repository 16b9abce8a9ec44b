"""Runs mirrored from a controller that drives its own steps (ClearML's PipelineController).

The engine never launches, skips or re-plots such a run; this records what the controller
did, as the ClearML front door (webapp/compat/mirror.py) reads it from the controller's
rows. Each call rebuilds the run from what it is given, under the run's lock, so recording
twice, late or out of order gives the same result.
"""

from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..choices import PipelineDriver
from ..models import PipelineNode, PipelineRun, Task

# What a mirrored node holds, besides its name.
NODE_FIELDS = (
    "position",
    "task",
    "base_task",
    "status",
    "message",
    "attempts",
    "resolved_overrides",
)


def mirror_run(
    controller: Task,
    *,
    definition: dict | None,
    nodes_for: Callable[[list], list[dict]],
    status: str,
    completed,
) -> PipelineRun | None:
    """Create or bring up to date the mirrored run of `controller`.

    `definition` ({steps, parameters, default_queue}) replaces the run's when given (a run
    is only created once there is one); `nodes_for(steps)`, called under the run's lock,
    gives every node as {name, position, task, base_task, status, message, attempts,
    resolved_overrides}; nodes it leaves out are deleted. A run of our own engine with this
    controller is left alone.
    """
    run = PipelineRun.objects.filter(controller=controller).first()
    if run is None:
        if definition is None:
            return None
        run = _create(controller)
    if run.driver != PipelineDriver.CLEARML:
        return run
    with transaction.atomic():
        run = PipelineRun.objects.select_for_update().get(pk=run.pk)
        if definition is not None:
            _save_changed(run, definition)
        _update_nodes(run, nodes_for(run.steps))
        if (run.completed is None) == (completed is None):
            completed = run.completed  # its end is kept once recorded
        _save_changed(run, {"status": status, "completed": completed})
    return run


def _create(controller: Task) -> PipelineRun:
    try:
        with transaction.atomic():
            return PipelineRun.objects.create(
                controller=controller, driver=PipelineDriver.CLEARML, steps=[]
            )
    except IntegrityError:  # created meanwhile by a concurrent refresh
        return PipelineRun.objects.get(controller=controller)


def _save_changed(row, fields: dict) -> None:
    changed = [name for name, value in fields.items() if getattr(row, name) != value]
    if changed:
        for name in changed:
            setattr(row, name, fields[name])
        row.save(update_fields=changed)


def _update_nodes(run: PipelineRun, wanted_nodes: list[dict]) -> None:
    existing = {node.name: node for node in run.nodes.all()}
    now = timezone.now()
    for wanted in wanted_nodes:
        wanted = dict(wanted)
        name = wanted.pop("name")
        node = existing.pop(name, None)
        if node is None:
            PipelineNode.objects.create(run=run, name=name, updated=now, **wanted)
            continue
        changed = [
            field
            for field, value in wanted.items()
            if getattr(node, field if field not in ("task", "base_task") else f"{field}_id")
            != (value.pk if isinstance(value, Task) else value)
        ]
        if changed:
            for field in changed:
                setattr(node, field, wanted[field])
            node.updated = now
            node.save(update_fields=[*changed, "updated"])
    if existing:  # nodes the controller no longer has in its DAG
        run.nodes.filter(pk__in=[node.pk for node in existing.values()]).delete()
