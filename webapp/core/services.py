"""The verbs of the domain. The only code that changes tasks or starts background work.

Status changes are conditional UPDATEs against the row, so two callers racing (a worker's
second delivery, the reaper and a late heartbeat) cannot both win.
"""

import copy
import logging

from django.db import IntegrityError, transaction
from django.db.models import CASCADE
from django.utils import timezone

from . import access, broker, hooks, limits, secrets, status
from .choices import (
    TaskStatus,
    TaskType,
    can_transition,
)
from .errors import Conflict, InvalidInput
from .keys import revoke_task_keys
from .models import (
    Project,
    Queue,
    QueueEntry,
    Task,
    Worker,
)
from .parameters import normalize_configuration, normalize_hyperparameters
from .storage import delete_task_outputs

logger = logging.getLogger(__name__)

EDITABLE_WHILE_DRAFT = {
    "name",
    "type",
    "comment",
    "script",
    "hyperparameters",
    "configuration",
    # How a worker runs it: attempts before the reaper gives up, seconds before it is killed.
    "max_attempts",
    "time_limit",
}
EDITABLE_ALWAYS = {"tags", "runtime", "comment"}
# A task running on a dev machine records its own parameters and script as it goes.
EDITABLE_WHILE_RUNNING = {"script", "hyperparameters", "configuration"}
DEFAULT_QUEUES = ("default", "services")


# ---------------------------------------------------------------- projects and queues


def get_or_create_project(name: str, user=None, team=None) -> Project:
    """The project called `name`, created (in the user's team, see access.py) if missing.

    An existing project the user may not see is refused, so nobody adds tasks to another
    team's project by naming it.
    """
    if not isinstance(name, str):
        raise InvalidInput("project name must be a string", field="project_name")
    name = name.strip()
    if not name:
        raise InvalidInput("project name must not be empty", field="project_name")
    if len(name) > limits.NAME_MAX:
        raise InvalidInput(
            f"project name is longer than {limits.NAME_MAX} characters", field="project_name"
        )
    existing = Project.objects.filter(name=name).first()
    if existing is not None:
        return access.check_project_access(existing, user)
    defaults = {"created_by": user, "team": access.team_for_new_project(user, team)}
    try:
        with transaction.atomic():
            project, _ = Project.objects.get_or_create(name=name, defaults=defaults)
    except IntegrityError:
        project = Project.objects.get(name=name)
    return access.check_project_access(project, user)


def describe_project(project: Project, description: str) -> Project:
    Project.objects.filter(pk=project.pk).update(description=description)
    project.description = description
    return project


def checked_queue_name(name, field: str = "queue") -> str:
    name = (name if isinstance(name, str) else "").strip()
    if len(name) > limits.QUEUE_NAME_MAX:
        raise InvalidInput(
            f"queue name is longer than {limits.QUEUE_NAME_MAX} characters", field=field
        )
    # Spaces too (ClearML's names have them): a broker queue name may hold any of these.
    if not name or not all(c.isalnum() or c in "-_. " for c in name):
        raise InvalidInput(
            f"invalid queue name {name!r}: use letters, digits, spaces, '-', '_', '.'",
            field=field,
        )
    return name


def get_or_create_queue(name: str) -> Queue:
    name = checked_queue_name(name)
    # Nearly always there already: a plain read, not a write transaction (SQLite's BEGIN
    # IMMEDIATE would queue behind every other writer just to look it up).
    queue = Queue.objects.filter(name=name).first()
    if queue is not None:
        return queue
    try:
        with transaction.atomic():
            queue, _ = Queue.objects.get_or_create(name=name)
    except IntegrityError:
        queue = Queue.objects.get(name=name)
    return queue


def delete_empty_projects(projects: list[Project], keep_related=("clearml",)) -> int:
    """Delete projects that hold nothing: a project any row would be deleted with (a task, a
    model, a schedule...; `keep_related` names the one-to-one extras that go with it) is
    refused, so deleting a project never deletes work. Returns how many it deleted."""
    cascading = [
        relation
        for relation in Project._meta.related_objects
        if relation.on_delete is CASCADE and relation.get_accessor_name() not in keep_related
    ]
    ids = [project.pk for project in projects]
    with transaction.atomic():
        for relation in cascading:
            field = relation.field.name
            if relation.related_model.objects.filter(**{f"{field}__in": ids}).exists():
                name = relation.related_model._meta.verbose_name_plural
                raise Conflict(f"the project still holds {name}: delete or move them first")
        deleted, _ = Project.objects.filter(pk__in=ids).delete()
    return len(ids) if deleted else 0


def ensure_default_queues() -> None:
    for name in DEFAULT_QUEUES:
        get_or_create_queue(name)


# ---------------------------------------------------------------- task lifecycle


def create_task(
    *,
    user,
    project_name: str,
    name: str,
    task_type: str = TaskType.TRAINING,
    script: dict | None = None,
    hyperparameters: dict | None = None,
    configuration: dict | None = None,
    tags: list | None = None,
    comment: str = "",
    parent: Task | None = None,
    start_running: bool = False,
) -> Task:
    """Create a draft; `start_running` marks it running at once (a script run locally)."""
    name = limits.checked_task_field("name", name)
    task_type = limits.checked_task_field("type", task_type)
    project = get_or_create_project(project_name, user)
    now = timezone.now()
    return Task.objects.create(
        project=project,
        name=name,
        type=task_type,
        script=limits.checked_task_field("script", script or {}),
        hyperparameters=normalize_hyperparameters(hyperparameters or {}),
        configuration=normalize_configuration(configuration or {}),
        tags=limits.checked_task_field("tags", list(tags or [])),
        comment=limits.checked_task_field("comment", comment or ""),
        parent=parent,
        created_by=user,
        status=TaskStatus.IN_PROGRESS if start_running else TaskStatus.CREATED,
        started=now if start_running else None,
        last_heartbeat=None,
        created=now,
        last_update=now,
    )


# The ClearML protocol's `force` edits any of these whatever the status.
# `parent` too: the ClearML SDK moves the steps it creates under their pipeline's controller
# (the door checks that the caller may use the new parent).
FORCE_EDITABLE = EDITABLE_WHILE_DRAFT | EDITABLE_ALWAYS | {"system_tags", "parent"}


def edit_task(task: Task, changes: dict, *, force: bool = False) -> Task:
    """Change fields of a task. Definition fields only while it is a draft (or running
    itself), unless `force` (the ClearML protocol's flag), which also edits system tags."""
    unknown = set(changes) - (FORCE_EDITABLE if force else EDITABLE_WHILE_DRAFT | EDITABLE_ALWAYS)
    if unknown:
        raise InvalidInput(f"cannot edit field(s): {', '.join(sorted(unknown))}")
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)
        tags_before = list(task.tags)
        for field, value in changes.items():
            if not (
                force
                or field in EDITABLE_ALWAYS
                or task.status == TaskStatus.CREATED
                or (task.status == TaskStatus.IN_PROGRESS and field in EDITABLE_WHILE_RUNNING)
            ):
                raise Conflict(
                    f"task {task.id} is {task.status}: {field} can only be edited on a draft",
                    status=task.status,
                )
            setattr(task, field, _checked_field(task, field, value))
        task.last_update = timezone.now()
        task.save(update_fields=[*changes, "last_update"])
        added = [tag for tag in task.tags if tag not in tags_before]
        if added:
            hooks.notify(hooks.TAGS_ADDED, task, added)
    return task


def _checked_field(task: Task, field: str, value):
    if field == "hyperparameters":
        # A masked secret read back and saved unchanged keeps its stored value: a client
        # that read a task masked (it does not run it) and saves it whole, as a pipeline
        # controller does with the steps it clones, keeps the stored secrets.
        return secrets.keep_masked_hyperparameters(
            normalize_hyperparameters(value), task.hyperparameters
        )
    if field == "configuration":
        return secrets.keep_masked_flat(normalize_configuration(value), task.configuration)
    return limits.checked_task_field(field, value)


def set_hyperparameters(task: Task, values: dict, replace: bool = False) -> Task:
    """Merge (or replace) hyperparameter sections; same draft/running rule as edit_task."""
    incoming = normalize_hyperparameters(values)
    if replace:
        merged = incoming
    else:
        merged = copy.deepcopy(task.hyperparameters)
        for section, params in incoming.items():
            merged.setdefault(section, {}).update(params)
    return edit_task(task, {"hyperparameters": merged})


def mark_started(task: Task) -> Task:
    """A draft that a process of its own runs (a step the controller runs as a subprocess)."""
    return status.change(
        task,
        TaskStatus.IN_PROGRESS,
        reason="started",
        expected=("created",),
        extra={"started": timezone.now()},
    )


def mark_completed(task: Task, reason: str = "", message: str = "") -> Task:
    return status.change(task, TaskStatus.COMPLETED, reason=reason or "completed", message=message)


def mark_failed(task: Task, reason: str = "", message: str = "") -> Task:
    return status.change(task, TaskStatus.FAILED, reason=reason or "failed", message=message)


def publish_task(task: Task) -> Task:
    return status.change(task, TaskStatus.PUBLISHED, reason="published")


def make_draft(task: Task) -> Task:
    """execute_remotely() on a dev machine: the local run becomes a draft base task."""
    return status.change(
        task,
        TaskStatus.CREATED,
        reason="registered as a draft",
        expected=(TaskStatus.IN_PROGRESS, TaskStatus.CREATED),
        extra={"started": None, "completed": None, "worker": ""},
    )


def clone_task(
    source: Task,
    *,
    user,
    name: str | None = None,
    project_name: str | None = None,
    parent: Task | None = None,
    hyperparameters: dict | None = None,
    configuration: dict | None = None,
    tags: list | None = None,
    project: Project | None = None,
    time_limit: float | None = None,
) -> Task:
    """A new draft with deep copies of the source's definition; parent is the source."""
    if project is None:
        project = get_or_create_project(project_name, user) if project_name else source.project
    task = build_clone(
        source,
        user=user,
        project=project,
        name=name,
        parent=parent,
        hyperparameters=hyperparameters,
        configuration=configuration,
        tags=tags,
        time_limit=time_limit,
    )
    task.save(force_insert=True)
    return task


def build_clone(
    source: Task,
    *,
    user,
    project: Project,
    name: str | None = None,
    parent: Task | None = None,
    hyperparameters: dict | None = None,
    configuration: dict | None = None,
    tags: list | None = None,
    time_limit: float | None = None,
) -> Task:
    """clone_task's draft, not saved yet, so that enqueue_clones can insert many at once."""
    params = copy.deepcopy(source.hyperparameters)
    for section, values in normalize_hyperparameters(hyperparameters or {}).items():
        params.setdefault(section, {}).update(values)
    config = copy.deepcopy(source.configuration)
    config.update(normalize_configuration(configuration or {}))
    now = timezone.now()
    return Task(
        project=project,
        name=limits.checked_task_field("name", name) if name else source.name,
        type=source.type,
        script=copy.deepcopy(source.script),
        hyperparameters=params,
        configuration=config,
        tags=limits.checked_task_field("tags", list(tags))
        if tags is not None
        else list(source.tags),
        comment=source.comment,
        parent=parent or source,
        max_attempts=source.max_attempts,
        time_limit=(
            limits.checked_task_field("time_limit", time_limit)
            if time_limit is not None
            else source.time_limit
        ),
        created_by=user,
        created=now,
        last_update=now,
    )


def enqueue_task(task: Task, queue_name: str = "default") -> Task:
    """Draft -> queued, then publish (task id, attempt) to the broker after commit."""
    queue = get_or_create_queue(queue_name)
    reason, expected = f"enqueued on {queue.name}", (TaskStatus.CREATED,)
    with transaction.atomic():
        before = task
        extra = {"queue": queue, "worker": ""}
        task = status.change(
            task,
            TaskStatus.QUEUED,
            reason=reason,
            expected=expected,
            extra=extra,
            next_attempt=True,
            as_read=True,
        ) or status.change(
            task,
            TaskStatus.QUEUED,
            reason=reason,
            expected=expected,
            extra=extra,
            next_attempt=True,
        )
        # The row now points at `queue` and its project did not change: no reads for them
        # when publishing and answering.
        task.queue = queue
        if Task.project.is_cached(before):
            task.project = before.project
        # Positions are enqueue times, so appending needs no read of the queue. The task row
        # was just updated, so no other enqueue of it can slip in between. One upsert: a
        # draft has no entry, but a forced status change may have left one.
        now = timezone.now()
        entry = {"queue": queue, "position": now.timestamp(), "added": now, "last_published": now}
        QueueEntry.objects.bulk_create(
            [QueueEntry(task=task, **entry)],
            update_conflicts=True,
            unique_fields=["task"],
            update_fields=list(entry),
        )
        publish_on_commit(task)
    return task


def queues_named(names) -> dict[str, Queue]:
    """The queues called `names` by name, created if missing."""
    queues = {queue.name: queue for queue in Queue.objects.filter(name__in=set(names)).order_by()}
    for name in set(names) - set(queues):
        queues[name] = get_or_create_queue(name)
    return queues


def enqueue_clones(
    tasks: list[Task], queue_names: list[str], queues: dict[str, Queue] | None = None
) -> list[Task]:
    """Insert unsaved drafts from build_clone already queued for their first attempt, with
    their queue entries, and publish each (task id, attempt) after commit.

    The same rows, messages and status-change hook as clone_task + enqueue_task for each
    task, in a few statements however many there are: a step fanning out to a thousand
    children costs one INSERT per table instead of a transition per child. `queues` are the
    queues by name when the caller has them (queues_named) already.
    """
    if any(not task._state.adding or task.status != TaskStatus.CREATED for task in tasks):
        raise InvalidInput("enqueue_clones takes new drafts from build_clone")
    if queues is None:
        queues = queues_named(queue_names)
    now = timezone.now()
    entries = []
    for offset, (task, name) in enumerate(zip(tasks, queue_names, strict=True)):
        queue = queues[name]
        task.status = TaskStatus.QUEUED
        task.status_reason = f"enqueued on {queue.name}"[:255]
        task.queue = queue
        task.attempt += 1
        task.worker = ""
        task.last_update = now
        # Positions are enqueue times; the offset keeps the batch in launch order.
        entries.append(
            QueueEntry(
                task=task,
                queue=queue,
                position=now.timestamp() + offset * 1e-6,
                added=now,
                last_published=now,
            )
        )
    # No savepoint: it is all or nothing with the caller's transaction.
    with transaction.atomic(savepoint=False):
        Task.objects.bulk_create(tasks, batch_size=500)
        QueueEntry.objects.bulk_create(entries, batch_size=500)
        for task in tasks:
            publish_on_commit(task)
            status.notify(task)
    return tasks


def insert_clones(tasks: list[Task]) -> list[Task]:
    """Insert unsaved drafts from build_clone as drafts, in one statement: the steps a
    pipeline's own process runs (start_locally(run_pipeline_steps_locally=True))."""
    if any(not task._state.adding or task.status != TaskStatus.CREATED for task in tasks):
        raise InvalidInput("insert_clones takes new drafts from build_clone")
    with transaction.atomic(savepoint=False):
        Task.objects.bulk_create(tasks, batch_size=500)
    return tasks


def publish_on_commit(task: Task) -> None:
    """Publish after commit. Callers stamp the entry as published when they write it (one
    write fewer on the hot path); a publish that fails clears the stamp, so the reconciler
    sends it again at its next sweep."""
    task_id, attempt, queue_name = task.id, task.attempt, task.queue.name

    def publish():
        if not broker.publish_run(task_id, attempt, queue_name):
            QueueEntry.objects.filter(task_id=task_id).update(last_published=None)

    transaction.on_commit(publish)


def dequeue_task(task: Task) -> Task:
    return status.change(task, TaskStatus.CREATED, reason="dequeued", expected=(TaskStatus.QUEUED,))


def abort_task(task: Task, reason: str = "aborted by user") -> Task:
    """Stop a queued or running task. A running step's worker sees it on its next heartbeat
    and kills the step's process group; its late report is refused because the row moved."""
    with transaction.atomic():
        task = status.change(
            task,
            TaskStatus.STOPPED,
            reason=reason,
            expected=(TaskStatus.QUEUED, TaskStatus.IN_PROGRESS, TaskStatus.CREATED),
        )
        revoke_task_keys(task)
        # The worker will not report this attempt, so it is not "running" it any more.
        Worker.objects.filter(current_task=task).update(current_task=None)
    return task


RESOURCES_UNMEASURED = {
    "resource_cpu_seconds": None,
    "resource_peak_rss_bytes": None,
    "resource_wall_seconds": None,
    "resource_gpu_seconds": None,
}


def reset_task(task: Task, *, draft_too: bool = False) -> Task:
    """Back to draft with every output cleared (console, results, artifacts). `draft_too`
    (ClearML's tasks.reset) also clears a draft's outputs, where our API refuses."""
    if task.status == TaskStatus.IN_PROGRESS:
        raise Conflict(f"task {task.id} is running: abort it before resetting", status=task.status)
    with transaction.atomic():
        task = status.change(
            task,
            TaskStatus.CREATED,
            reason="reset",
            expected=tuple(s for s in TaskStatus.values if s != TaskStatus.PUBLISHED),
            # A same-status change: only from the status the row was read with (a draft).
            force=draft_too and task.status == TaskStatus.CREATED,
            extra={
                "started": None,
                "completed": None,
                "worker": "",
                "last_heartbeat": None,
                "last_metrics": {},
                "status_message": "",
                "runtime": {},
                **RESOURCES_UNMEASURED,
            },
        )
        delete_task_outputs(task)
    return task


def can_transition_to(task: Task, target: str) -> bool:
    return can_transition(task.status, target)


def archive_task(task: Task) -> Task:
    Task.objects.filter(pk=task.pk).update(archived=True, last_update=timezone.now())
    task.refresh_from_db()
    return task


# ---------------------------------------------------------------- dashboard verbs
# Added for the browser dashboard: deleting and restoring tasks, reordering a queue.


def restore_task(task: Task) -> Task:
    """Undo archive_task."""
    Task.objects.filter(pk=task.pk).update(archived=False, last_update=timezone.now())
    task.refresh_from_db()
    return task


def delete_task(task: Task) -> None:
    """Delete a task that is not queued or running, with its outputs and their bytes.

    Children and pipeline nodes keep existing (their link to it is set to NULL).
    """
    with transaction.atomic():
        task = Task.objects.select_for_update().get(pk=task.pk)
        if task.status in (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS):
            raise Conflict(
                f"task {task.id} is {task.status}: abort or dequeue it before deleting",
                status=task.status,
            )
        delete_task_outputs(task)
        task.delete()


def move_queue_entry(task: Task, direction: str) -> QueueEntry:
    """Swap a queued task with its neighbour ("up" = earlier, "down" = later) in its queue.

    The queue is renumbered 1..n in its current order first, so entries that share a
    position (the reaper puts re-queued tasks at 0) still move one step. Workers claim in
    this order (execution.claim_turn): a message is a turn in its queue, not a ticket.
    """
    if direction not in ("up", "down"):
        raise InvalidInput("direction must be 'up' or 'down'")
    with transaction.atomic():
        entry = QueueEntry.objects.select_for_update().filter(task=task).first()
        if entry is None:
            raise Conflict(f"task {task.id} is not waiting in a queue", status=task.status)
        entries = list(
            QueueEntry.objects.select_for_update()
            .filter(queue_id=entry.queue_id)
            .order_by("position", "added", "pk")
        )
        index = next(i for i, e in enumerate(entries) if e.pk == entry.pk)
        target = index - 1 if direction == "up" else index + 1
        if 0 <= target < len(entries):
            entries[index], entries[target] = entries[target], entries[index]
        for position, item in enumerate(entries, start=1):
            if item.position != position:
                QueueEntry.objects.filter(pk=item.pk).update(position=float(position))
                item.position = float(position)
    return entry
