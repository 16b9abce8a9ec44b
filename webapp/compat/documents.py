"""Our rows as ClearML documents (tasks, projects, queues, models), and the lookups handlers
share (a task or project by id, visible to the caller, or a 400 as ClearML answers)."""

from urllib.parse import unquote, urlsplit

from django.db.models import Q
from django.utils import timezone

from webapp.core import access, policy, presenters
from webapp.core.models import Artifact, Project, Queue, QueueEntry, Task

from .convert import (
    CLEARML_SYSTEM_TAG,
    OUR_KIND_TO_CLEARML,
    configuration_to_clearml,
    hyperparams_to_clearml,
    last_metrics_to_clearml,
    script_to_clearml,
)
from .envelope import ApiError, bad_request
from .models import ProjectExtra, QueueExtra, RegisteredModel, TaskExtra

FILES_PREFIX = "/clearml-files/"


def iso(value) -> str | None:
    return value.isoformat() if value else None


# ----------------------------------------------------------------- lookups


def visible_tasks(call):
    return access.visible_tasks(call.user, call.key)


def visible_models(call):
    """The registered models the caller sees: its own, and those of the tasks it sees."""
    if access.sees_everything(call.user, call.key):
        return RegisteredModel.objects.all()
    tasks = access.visible_tasks(call.user, call.key)
    return RegisteredModel.objects.filter(Q(created_by=call.user) | Q(task__in=tasks))


def rule_of(call, verb: str | None = None) -> str:
    """The caller's object rule for `verb` (the endpoint's own by default)."""
    if verb is None or verb == call.verb:
        return call.rule
    return policy.rule_for(verb, call.user, call.key)


def get_task(call, task_id, *, verb: str | None = None) -> Task:
    """A task the caller sees and may act on as `verb` (the endpoint's verb by default):
    ClearML's 400 "invalid task id" if it does not see it, a 403 if it may not act on it."""
    if not task_id or not isinstance(task_id, str):
        raise bad_request("missing required field 'task'")
    task = visible_tasks(call).select_related("project", "clearml").filter(pk=task_id).first()
    if task is None:
        # ClearML's "invalid task id" is a 400 (subcode 101), not a 404.
        raise ApiError(400, f"Invalid task id: id={task_id}", 101)
    check_task(call, task, verb)
    return task


def check_task(call, task: Task, verb: str | None = None) -> None:
    if not access.permits(rule_of(call, verb), call.user, call.key, task):
        raise ApiError(
            403, f"this key may not {policy.verb(verb or call.verb).summary}: task {task.pk}", 21
        )
    if (verb or call.verb) != "task.read" and extra_of(task).public:
        # clearml-server's "no write permission" for a public task, whoever asks.
        raise ApiError(403, f"task {task.pk} is public: make it private to change it", 21)


def get_project(call, project_id, *, verb: str | None = None) -> Project:
    """A project the caller sees (400 "invalid project id" otherwise) and may act on as
    `verb` (the endpoint's verb by default; a 403 otherwise)."""
    project = access.visible_projects(call.user, call.key).filter(pk=project_id).first()
    if project is None:
        raise ApiError(400, f"Invalid project id: id={project_id}", 101)
    check_project(call, project, verb)
    return project


def check_project(call, project: Project, verb: str | None = None) -> None:
    if not access.permits_project(rule_of(call, verb), call.user, call.key, project):
        raise ApiError(
            403,
            f"this key may not {policy.verb(verb or call.verb).summary}: project {project.pk}",
            21,
        )


def get_queue(value) -> Queue:
    """By id only, as ClearML does: the SDK sends a name first, expects a 400, then searches."""
    queue = Queue.objects.filter(pk=str(value or "")).first()
    if queue is None:
        raise ApiError(400, f"Invalid queue id: id={value}", 701)
    return queue


def extra_of(task: Task) -> TaskExtra:
    try:
        return task.clearml
    except TaskExtra.DoesNotExist:
        return TaskExtra(task=task)


def record_runner(task: Task, worker: str = "", key=None) -> None:
    """Who runs the task: clearml-server keeps the caller's X-ClearML-Worker as its last
    worker; the caller's key is the one its SDK reads its parameters with (presenters.py)."""
    extra = extra_of(task)
    changed = []
    if worker and extra.last_worker != worker[:255]:
        extra.last_worker = worker[:255]
        changed.append("last_worker")
    if key is not None and extra.run_key_id != key.pk:
        extra.run_key = key
        changed.append("run_key")
    if changed:
        # Only these columns: a concurrent edit of the task's other ClearML fields stays.
        extra.save(update_fields=None if extra._state.adding else changed)


def record_ping(task: Task) -> None:
    """A ping moves ClearML's `last_update` (last_update_of), not the task's own."""
    extra = extra_of(task)
    extra.last_ping = timezone.now()
    extra.save(update_fields=None if extra._state.adding else ["last_ping"])


def last_update_of(task: Task, extra: TaskExtra):
    if extra.last_ping and (task.last_update is None or extra.last_ping > task.last_update):
        return extra.last_ping
    return task.last_update


def project_extra_of(project: Project) -> ProjectExtra:
    try:
        return project.clearml
    except ProjectExtra.DoesNotExist:
        return ProjectExtra(project=project)


def file_path_of(uri: str) -> str | None:
    """The object path of a URL on our ClearML file server, whatever host it was given as."""
    path = urlsplit(str(uri or "")).path
    index = path.find(FILES_PREFIX)
    if index < 0:
        return None
    return unquote(path[index + len(FILES_PREFIX) :]) or None


# ----------------------------------------------------------------- documents


def artifact_doc(artifact: Artifact) -> dict:
    clearml = (artifact.metadata or {}).get("clearml")
    if isinstance(clearml, dict):
        return {**clearml, "key": artifact.name}
    # One of our own SDK's artifacts, described the way ClearML would.
    return {
        "key": artifact.name,
        "type": OUR_KIND_TO_CLEARML.get(artifact.kind, "custom"),
        "mode": "output",
        "uri": artifact.url,
        "hash": artifact.sha256,
        "content_size": artifact.size,
        "timestamp": int(artifact.created.timestamp()),
        "type_data": {"preview": artifact.preview, "content_type": artifact.content_type},
    }


def task_doc(task: Task, artifacts=None, *, key=None) -> dict:
    """The task as ClearML's document, secret-looking values masked unless `key` (the caller's)
    runs the task (core/presenters.py)."""
    extra = extra_of(task)
    reading = presenters.read_task(task, key=key, run_key_id=extra.run_key_id)
    if artifacts is None:
        artifacts = list(task.artifacts.all())
    execution = dict(extra.execution or {})
    execution["queue"] = task.queue_id
    execution["artifacts"] = [artifact_doc(a) for a in artifacts]
    execution.setdefault("parameters", {})
    models = extra.task_models or {}
    doc = {
        "id": task.id,
        "name": task.name,
        "user": str(task.created_by_id or ""),
        "company": "pipelines",
        "type": task.type,
        "status": task.status,
        "status_reason": task.status_reason,
        "status_message": reading.status_message,
        "status_changed": iso(task.last_update),
        "comment": task.comment,
        "created": iso(task.created),
        "started": iso(task.started),
        "completed": iso(task.completed),
        "last_update": iso(last_update_of(task, extra)),
        "last_change": iso(task.last_update),
        "active_duration": _active_duration(task),
        "parent": task.parent_id,
        "project": task.project_id,
        "output": extra.output or {},
        "execution": execution,
        "container": extra.container or {},
        "models": {"input": models.get("input", []), "output": models.get("output", [])},
        "script": script_to_clearml(task.script, extra.script or {}),
        "tags": list(task.tags or []),
        # Our `archived` flag is ClearML's `archived` system tag (filtered as `-archived`);
        # our own `clearml` mark is not ClearML's and is kept through edits (tasks.py).
        "system_tags": [t for t in task.system_tags or [] if t != CLEARML_SYSTEM_TAG]
        + (["archived"] if task.archived else []),
        "last_iteration": extra.last_iteration,
        "last_metrics": last_metrics_to_clearml(task.last_metrics),
        "hyperparams": hyperparams_to_clearml(reading.hyperparameters),
        "configuration": configuration_to_clearml(reading.configuration),
        "runtime": dict(task.runtime or {}),
        "last_worker": extra.last_worker or task.worker,
    }
    if task.type == "report":
        doc["report"], doc["report_assets"] = extra.report, list(extra.report_assets or [])
    return doc


def _active_duration(task: Task) -> int | None:
    if not task.started:
        return None
    end = task.completed or task.last_update
    return max(0, int((end - task.started).total_seconds())) if end else None


def project_doc(project: Project) -> dict:
    extra = project_extra_of(project)
    return {
        "id": project.id,
        "name": project.name,
        "basename": project.name.rsplit("/", 1)[-1],
        "description": project.description,
        "user": str(project.created_by_id or ""),
        "company": "pipelines",
        "created": iso(project.created),
        "last_update": iso(project.created),
        "tags": list(extra.tags or []),
        "system_tags": list(extra.system_tags or []),
        "default_output_destination": extra.default_output_destination or None,
    }


def queue_extra_of(queue: Queue) -> QueueExtra:
    try:
        return queue.clearml
    except QueueExtra.DoesNotExist:
        return QueueExtra(queue=queue)


def queue_doc(queue: Queue, visible=None, max_entries: int | None = None) -> dict:
    """The queue; its entries only for the tasks in `visible` (a caller's visible_tasks)."""
    entries = QueueEntry.objects.filter(queue=queue).order_by("position", "added", "pk")
    if visible is not None:
        entries = entries.filter(task__in=visible.values("pk"))
    if max_entries is not None:
        entries = entries[: max(0, max_entries)]
    extra = queue_extra_of(queue)
    system_tags = list(extra.system_tags or [])
    # The SDK and agent look for the queue tagged `default` when given no queue.
    if queue.name == "default" and "default" not in system_tags and extra._state.adding:
        system_tags.append("default")
    return {
        "id": queue.id,
        "name": queue.name,
        "display_name": extra.display_name or None,
        "user": "",
        "company": "pipelines",
        "created": iso(queue.created),
        "last_update": iso(extra.last_update if not extra._state.adding else queue.created),
        "tags": list(extra.tags or []),
        "system_tags": system_tags,
        "entries": [{"task": e.task_id, "added": iso(e.added)} for e in entries],
        "metadata": dict(extra.metadata or {}),
    }


def model_doc(model) -> dict:
    return {
        "id": model.id,
        "name": model.name,
        "uri": model.uri,
        "framework": model.framework,
        "design": model.design or {},
        "labels": model.labels or {},
        "comment": model.comment,
        "tags": list(model.tags or []),
        "system_tags": list(model.system_tags or []),
        "ready": model.ready,
        "public": model.public,
        "project": model.project_id,
        "task": model.task_id,
        "parent": model.parent or None,
        "user": str(model.created_by_id or ""),
        "company": "pipelines",
        "created": iso(model.created),
        "last_update": iso(model.last_update),
        "metadata": model.metadata or {},
    }
