"""Fan-out: a map step's items, run in batches the engine adds to the running run.

A map node (a step of the definition with a `map`, pipelines/fanout.py) runs no task of its
own while its items run. When it is ready, `expand` resolves its items (a literal list, a
pipeline or parent's parameter, or a parent's JSON artifact holding a list), adds one batch
node per `items_per_task` items (nodes outside the definition: `map_step` names their map,
`result` holds their items) and launches as many as `max_parallel` allows. A batch is a clone
of the step's function task; its runtime (pipelines/step_runtime.py) runs the items one
after another and reports each one's status and result (`report_items`). As a batch ends
the next one is launched. When the last has ended, either enough items succeeded and the
map launches its collector (the same function task in collect mode, which gathers the
results in order into artifacts of its own), so the map node ends like any step, with a
task; or it fails, naming the items that failed.

What one batch's end costs does not grow with the map: the batch, its map node, the count of
its batches by state and the next ones to launch are read. Only the map's end reads all its
batches, once.
"""

import json

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from pipelines import dag, fanout, parameters

from .. import limits, services
from ..choices import NODE_STATUS_FOR_TASK, NODE_TERMINAL, ArtifactKind, NodeStatus, TaskStatus
from ..errors import Conflict, InvalidInput, NotFound
from ..models import Artifact, PipelineNode, Task
from ..storage import artifact_storage
from ._clones import Launch, clone_all
from ._pass import Pass, locked, nodes_with_tasks, one, run_nodes, set_node
from ._references import reference_lookup

# A list of items read from an artifact: no larger than a configuration object.
ITEMS_ARTIFACT_MAX_BYTES = limits.CONFIGURATION_VALUE_MAX
ACTIVE = (NodeStatus.QUEUED, NodeStatus.RUNNING)
ITEM_DONE = ("completed", "failed")
# The runtime's modes, as the batch and collector tasks read them.
MODE_ITEMS, MODE_COLLECT = "items", "collect"


class MapError(Exception):
    """The items of a map cannot be had; its node fails with this reason."""


def batch_name(step: str, indices: range) -> str:
    """A batch's node and task name: `square[3]`, or `square[0-49]` for several items. The
    brackets cannot appear in a step's name, so it never meets one."""
    if len(indices) == 1:
        return f"{step}[{indices[0]}]"
    return f"{step}[{indices[0]}-{indices[-1]}]"


# ---------------------------------------------------------------- expanding a map node


def expand(work: Pass, node, step: dict, base: Task, known: dict) -> list:
    """Fan the ready map `node` out; returns it if it ended at once (no items to be had, or
    none at all and its collector could not launch)."""
    settings = step["map"]
    try:
        items = _items(work, settings, known)
        rows = _batch_rows(work, node, step, base, items)
    except MapError as error:
        set_node(work, node, NodeStatus.FAILED, f"cannot fan out: {error}"[:2000])
        return [node]
    PipelineNode.objects.bulk_create(rows, batch_size=500)
    set_node(work, node, NodeStatus.RUNNING, f"{len(items)} items in {len(rows)} tasks")
    if not rows:
        return _finish(work, node, step, base)
    first = rows[: fanout.launchable(len(rows), 0, settings["max_parallel"])]
    _launch_batches(work, node, step, base, first)
    return []


def _items(work: Pass, settings: dict, known: dict) -> list:
    items = settings["items"]
    if isinstance(items, str):
        (ref,) = dag.parse_references(items)
        if ref.kind == "artifact":
            items = _artifact_items(ref, known)
        else:
            items = _value_items(work, ref, known)
    try:
        return fanout.check_items(items)
    except dag.PipelineDefinitionError as error:
        raise MapError(error.detail) from None


def _value_items(work: Pass, ref: dag.Reference, known: dict):
    """A pipeline's or a parent's parameter: a list, or the JSON text of one."""
    try:
        value = reference_lookup(work, known)(ref)
    except dag.UnresolvedReference as error:
        raise MapError(f"cannot resolve {ref.text}: {error.reason}") from None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise MapError(f"{ref.text} is not a list (nor the JSON text of one)") from None
    return value


def _artifact_items(ref: dag.Reference, known: dict):
    """A parent's JSON artifact holding a list, read from storage: the server reads JSON of
    a bounded size and never unpickles anything."""
    node = known.get(ref.step)
    if node is None or node.task is None:
        raise MapError(f"step {ref.step!r} has no task")
    artifact = Artifact.objects.filter(task=node.task, name=ref.name).first()
    if artifact is None:
        raise MapError(f"step {ref.step!r} has no artifact {ref.name!r}")
    if not artifact.is_ready:
        raise MapError(f"artifact {ref.name!r} is not ready")
    if artifact.kind != ArtifactKind.JSON:
        raise MapError(f"artifact {ref.name!r} is {artifact.kind}, not a JSON list")
    if artifact.size > ITEMS_ARTIFACT_MAX_BYTES:
        raise MapError(
            f"artifact {ref.name!r} is {artifact.size} bytes; a list of items may have "
            f"{ITEMS_ARTIFACT_MAX_BYTES}"
        )
    try:
        with artifact_storage().open(artifact.storage_key, "rb") as stored:
            return limits.load_json(
                stored.read(ITEMS_ARTIFACT_MAX_BYTES + 1), ITEMS_ARTIFACT_MAX_BYTES
            )
    except InvalidInput as error:
        raise MapError(f"artifact {ref.name!r}: {error.message}") from None
    except OSError as error:
        raise MapError(f"artifact {ref.name!r} cannot be read: {error}") from None


def _batch_rows(work: Pass, node, step: dict, base: Task, items: list) -> list:
    settings = step["map"]
    rows = []
    start = len(work.shape.steps)
    for number, indices in enumerate(fanout.batches(len(items), settings["items_per_task"])):
        batch = [{"index": i, "value": items[i], "status": "pending"} for i in indices]
        size = len(json.dumps([[i["index"], i["value"]] for i in batch]))
        if size > fanout.BATCH_ITEMS_MAX_CHARS:
            raise MapError(
                f"the items of task {number} are {size} characters as JSON; one task's items "
                f"may have {fanout.BATCH_ITEMS_MAX_CHARS} (lower items_per_task)"
            )
        rows.append(
            PipelineNode(
                run=work.run,
                name=batch_name(node.name, indices),
                position=start + number,
                base_task=base,
                map_step=node.name,
                map_index=number,
                result={"items": batch},
                updated=work.now,
            )
        )
    return rows


# ---------------------------------------------------------------- launching batches


def _step_overrides(node) -> tuple[dict, dict]:
    """The map node's resolved parameters and configuration, which each batch shares."""
    params, config = {}, {}
    for key, value in (node.resolved_overrides or {}).items():
        if key.startswith("configuration:"):
            config[key.partition(":")[2]] = value
        else:
            params[key] = value
    return params, config


def _launch_batches(work: Pass, node, step: dict, base: Task, batches: list) -> None:
    params, config = _step_overrides(node)
    shared = {
        "map/mode": MODE_ITEMS,
        "map/kwarg": step["map"]["kwarg"],
        # A failed item is tried again in its task, this many times.
        "map/retries": step.get("retry_on_failure") or 0,
    }
    hyper = services.normalize_hyperparameters(parameters.nest({**params, **shared}))
    queue = step.get("execution_queue") or work.run.default_queue
    time_limit = step.get("time_limit") or None
    launches = []
    for batch in batches:
        items = [[item["index"], item["value"]] for item in batch.result["items"]]
        launches.append(
            Launch(
                batch,
                batch.name,
                base,
                hyper,
                {**config, "map_items": json.dumps(items)},
                time_limit,
                queue,
            )
        )
    clone_all(work, launches)


# ---------------------------------------------------------------- a batch changed


def batch_changed(work: Pass, batch) -> list:
    """A batch's task changed state: show it, and when it has ended, launch the next batch
    or end the map. Returns the map node if it ended."""
    task = batch.task
    status = NODE_STATUS_FOR_TASK.get(task.status, NodeStatus.QUEUED)
    if status == NodeStatus.PENDING:
        status = NodeStatus.QUEUED  # dequeued by hand: it waits, and is not launched again
    if status == batch.status:
        return []
    _set_batch(work, batch, status, task.status_reason)
    if status not in NODE_TERMINAL:
        return []
    _fail_unreported(batch, task)
    node = one(nodes_with_tasks(work.run).filter(name=batch.map_step))
    if node is None or node.status != NodeStatus.RUNNING or node.task_id is not None:
        return []  # stopped, or already ended
    return _continue(work, node)


def check(work: Pass, node) -> list:
    """The sweep's repair of a running map: every batch shown as its task is, the next ones
    launched, the map ended when its last batch has (whatever events were missed)."""
    active = nodes_with_tasks(work.run).filter(map_step=node.name, status__in=ACTIVE)
    for batch in active:
        if batch.task is None:
            continue
        status = NODE_STATUS_FOR_TASK.get(batch.task.status, NodeStatus.QUEUED)
        if status in NODE_TERMINAL:
            _set_batch(work, batch, status, batch.task.status_reason)
            _fail_unreported(batch, batch.task)
    return _continue(work, node)


def _continue(work: Pass, node) -> list:
    step = work.shape.index.steps[node.name]
    work.write_nodes()  # the batch's new state, before the batches are counted
    counts = dict(
        run_nodes(work.run)
        .filter(map_step=node.name)
        .values_list("status")
        .annotate(count=Count("pk"))
        .values_list("status", "count")
    )
    pending = counts.get(NodeStatus.PENDING, 0)
    active = sum(counts.get(status, 0) for status in ACTIVE)
    room = fanout.launchable(pending, active, step["map"]["max_parallel"])
    if room:
        base = Task.objects.filter(pk=step["base_task_id"]).first()
        if base is None:
            set_node(
                work, node, NodeStatus.FAILED, f"base task {step['base_task_id']} no longer exists"
            )
            return [node]
        upcoming = run_nodes(work.run).filter(
            map_step=node.name, status=NodeStatus.PENDING, task__isnull=True
        )
        _launch_batches(work, node, step, base, list(upcoming.order_by("map_index")[:room]))
        return []
    if active or pending:
        return []
    return _finish(work, node, step, Task.objects.filter(pk=step["base_task_id"]).first())


def _set_batch(work: Pass, batch, status: str, message: str = "") -> None:
    batch.status, batch.message, batch.updated = status, message or "", timezone.now()
    work.unwritten[batch.pk] = batch
    work.changed = True


def _fail_unreported(batch, task: Task) -> None:
    """Items a task did not report by its end failed with it (killed, crashed, aborted)."""
    reason = f"task {task.id} ended {task.status}: {task.status_reason or 'no reason given'}"
    changed = False
    for item in batch.result.get("items", []):
        if item.get("status") not in ITEM_DONE:
            item.update(status="failed", message=reason[:2000])
            changed = True
    if changed:
        PipelineNode.objects.filter(pk=batch.pk).update(result=batch.result)


# ---------------------------------------------------------------- the end of a map


def _finish(work: Pass, node, step: dict, base: Task | None) -> list:
    """All batches have ended: launch the collector, or fail naming the failed items."""
    settings = step["map"]
    results = run_nodes(work.run).filter(map_step=node.name).values_list("result", flat=True)
    items = [item for result in results for item in result.get("items", [])]
    failed = sorted(item["index"] for item in items if item.get("status") != "completed")
    total = len(items)
    if not fanout.succeeded_enough(total, total - len(failed), settings["min_success_ratio"]):
        message = fanout.failure_message(total, failed, settings["min_success_ratio"])
        set_node(work, node, NodeStatus.FAILED, message)
        return [node]
    if base is None:
        set_node(
            work, node, NodeStatus.FAILED, f"base task {step['base_task_id']} no longer exists"
        )
        return [node]
    params, config = _step_overrides(node)
    collect = {**params, "map/mode": MODE_COLLECT, "map/run": work.run.pk, "map/step": node.name}
    clone_all(
        work,
        [
            Launch(
                node,
                node.name,
                base,
                services.normalize_hyperparameters(parameters.nest(collect)),
                config,
                step.get("time_limit") or None,
                step.get("execution_queue") or work.run.default_queue,
            )
        ],
    )
    node.message = f"{total - len(failed)} of {total} items completed; collecting their results"
    return []


def abort_batches(work: Pass, names: list, reason: str) -> None:
    """Stop the batches of maps `names` that have not ended (a run stopped or aborted)."""
    batches = (
        nodes_with_tasks(work.run).filter(map_step__in=names).exclude(status__in=NODE_TERMINAL)
    )
    for batch in batches:
        if batch.task is not None and batch.task.status in (
            TaskStatus.QUEUED,
            TaskStatus.IN_PROGRESS,
            TaskStatus.CREATED,
        ):
            try:
                services.abort_task(batch.task, reason)
            except Conflict:
                pass
            _set_batch(work, batch, NodeStatus.ABORTED, reason)
        else:
            _set_batch(work, batch, NodeStatus.SKIPPED, reason)


# ---------------------------------------------------------------- items as reported and read


def report_items(task: Task, reports: list) -> int:
    """A batch's task reports some of its items' ends ({index, status, values, artifacts,
    message, started, ended}); an item already reported keeps its first report, so a
    repeated request changes nothing. Returns how many were recorded."""
    batch = one(PipelineNode.objects.filter(task_id=task.pk).exclude(map_step=""))
    if batch is None:
        raise NotFound("this task runs no items of a fan-out")
    recorded = 0
    with transaction.atomic():
        # Under the run's lock, as the engine's own writes of a batch's items are.
        if locked(batch.run_id) is None:
            raise NotFound("this task runs no items of a fan-out")
        batch = PipelineNode.objects.get(pk=batch.pk)
        mine = {item["index"]: item for item in batch.result.get("items", [])}
        for report in reports:
            item = mine.get(report["index"])
            if item is None:
                raise InvalidInput(f"item {report['index']} is not one of this task's items")
            if item.get("status") in ITEM_DONE:
                continue
            item.update({key: value for key, value in report.items() if key != "index"})
            recorded += 1
        if recorded:
            PipelineNode.objects.filter(pk=batch.pk).update(result=batch.result)
    return recorded


def map_items(run, step: str, offset: int = 0, limit: int = 1000) -> dict:
    """A map's items in order, each with its state and result, a page at a time. An item not
    yet reported shows its batch's state (pending, queued, running)."""
    rows = (
        run_nodes(run)
        .filter(map_step=step)
        .order_by("map_index")
        .values_list("status", "task_id", "result")
    )
    items = []
    for status, task_id, result in rows:
        for item in result.get("items", []):
            shown = item.get("status")
            if shown not in ITEM_DONE:
                shown = status if status in (NodeStatus.PENDING, *ACTIVE) else "failed"
            items.append({**item, "status": shown, "task": task_id})
    return {"count": len(items), "items": items[offset : offset + limit]}
