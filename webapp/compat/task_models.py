"""Tasks and their registered models, linked as clearml-server links them.

A task names its models in `models.input` / `models.output` (TaskExtra.task_models), and a
model names the task that made it (RegisteredModel.task). Deleting or resetting a task
deletes its draft output models (unless another task takes them as input) and leaves its
published ones in place, unlinked; a model deleted from under a task stays named in the
task's lists as `__DELETED__<id>`, so the task still says what it used.
"""

from dataclasses import dataclass, field

from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from webapp.core.choices import TaskStatus
from webapp.core.models import Task

from .documents import artifact_doc, extra_of, visible_models
from .envelope import ApiError
from .models import RegisteredModel, TaskExtra

DELETED = "__DELETED__"
# Before API 2.13 a task's input model was `execution.model` and its output model
# `output.model`; clearml-server maps them onto `models` for clients that old.
MODELS_FIELD_SINCE = (2, 13)
LEGACY_NAMES = {"input": "Input Model", "output": "Output Model"}


def api_version(call) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in str(call.version).split("."))
    except ValueError:
        return (999,)


def legacy_models(call, body: dict) -> dict:
    """`body` with an old client's `execution.model` / `output.model` as `models` lists."""
    if not call.version or api_version(call) >= MODELS_FIELD_SINCE:
        return body
    body = dict(body)
    models = dict(body["models"]) if isinstance(body.get("models"), dict) else {}
    moved = False
    for section, kind in (("execution", "input"), ("output", "output")):
        if isinstance(body.get(section), dict) and "model" in body[section]:
            values = dict(body[section])
            model_id = values.pop("model")
            body[section] = values
            models[kind] = (
                [{"name": LEGACY_NAMES[kind], "model": str(model_id), "updated": _now()}]
                if model_id
                else []
            )
            moved = True
    if moved:
        body["models"] = models
    return body


def _now() -> str:
    return timezone.now().isoformat()


def model_ids(models, kind: str) -> list[str]:
    entries = (models or {}).get(kind) if isinstance(models, dict) else None
    return [str(m["model"]) for m in entries or [] if isinstance(m, dict) and m.get("model")]


def check_models_exist(call, ids) -> None:
    """clearml-server's 400/201 for models named that the caller does not see (a deleted
    one included)."""
    wanted = {str(i) for i in ids}
    found = set(visible_models(call).filter(pk__in=wanted).values_list("pk", flat=True))
    missing = sorted(wanted - found)
    if missing:
        raise ApiError(400, f"Invalid model id: models={missing}", 201)


def output_model(task: Task) -> RegisteredModel | None:
    """The task's output model: the last of its `models.output` (as clearml-server takes it),
    if the task made it: publishing a task never readies another one's model."""
    ids = model_ids(extra_of(task).task_models, "output")
    return RegisteredModel.objects.filter(pk=ids[-1], task=task).first() if ids else None


def set_output_model(task: Task, model: RegisteredModel) -> None:
    """`model` as the task's one output model (models.update_for_task)."""
    extra = extra_of(task)
    models = dict(extra.task_models or {})
    models["output"] = [{"name": LEGACY_NAMES["output"], "model": model.pk, "updated": _now()}]
    extra.task_models = models
    extra.save()


def raise_iteration(task: Task, iteration: int | None) -> None:
    """A model reported at `iteration` moves its task's last iteration up, never down."""
    if iteration is None:
        return
    extra = extra_of(task)
    if iteration > extra.last_iteration:
        extra.last_iteration = iteration
        extra.save()


def _naming(model_id: str):
    """The TaskExtra rows whose model lists may name `model_id` (confirmed by the caller)."""
    return TaskExtra.objects.annotate(models_text=Cast("task_models", TextField())).filter(
        models_text__contains=model_id
    )


def tasks_using(model_id: str) -> list[TaskExtra]:
    """The tasks that take `model_id` as an input model."""
    return [row for row in _naming(model_id) if model_id in model_ids(row.task_models, "input")]


def mark_deleted(model_id: str, kind: str, rows=None) -> None:
    """Name `model_id` as deleted in the `kind` lists of the tasks listing it."""
    for row in rows if rows is not None else _naming(model_id):
        models = dict(row.task_models or {})
        entries = models.get(kind) or []
        if model_id not in model_ids(models, kind):
            continue
        models[kind] = [
            {**m, "model": f"{DELETED}{model_id}"} if m.get("model") == model_id else m
            for m in entries
        ]
        row.task_models = models
        row.save(update_fields=["task_models"])


def drop_output(task: Task, model_id: str) -> None:
    extra = extra_of(task)
    models = dict(extra.task_models or {})
    models["output"] = [m for m in models.get("output") or [] if m.get("model") != model_id]
    extra.task_models = models
    extra.save()


def delete_model(model: RegisteredModel, force: bool) -> None:
    """models.delete: refused for a model other tasks take as input, or made by a published
    task, unless forced; the tasks naming it then name it `__DELETED__<id>`."""
    users = tasks_using(model.pk)
    if users and not force:
        raise ApiError(
            400, f"model is used by tasks as their input: {len(users)}, use force=True", 205
        )
    if users:
        mark_deleted(model.pk, "input", users)
    task = model.task
    if task is not None:
        if task.status == TaskStatus.PUBLISHED:
            if not force:
                raise ApiError(
                    400, f"the task that created this model is published: {task.pk}", 206
                )
            mark_deleted(model.pk, "output", [extra_of(task)])
        else:
            drop_output(task, model.pk)
    model.delete()


# ----------------------------------------------------------------- deleting, resetting a task


@dataclass
class Cleanup:
    """What deleting or resetting a task did to what hung on it (clearml-server's answer)."""

    updated_children: int = 0
    updated_models: int = 0
    deleted_models: int = 0
    model_urls: list = field(default_factory=list)
    artifact_urls: list = field(default_factory=list)

    def answer(self, return_file_urls: bool) -> dict:
        urls = (
            {
                "model_urls": sorted(set(self.model_urls)),
                "event_urls": [],
                "artifact_urls": sorted(set(self.artifact_urls)),
            }
            if return_file_urls
            else None
        )
        return {
            "updated_children": self.updated_children,
            "updated_models": self.updated_models,
            "deleted_models": self.deleted_models,
            "urls": urls,
        }


def _models_of(task: Task) -> tuple[list, list]:
    """(published, draft) models the task made. Only those linked to it: a model it merely
    names as its output is someone else's to delete (its task's, or its creator's)."""
    models = list(RegisteredModel.objects.filter(task=task))
    return [m for m in models if m.ready], [m for m in models if not m.ready]


def check_removable(task: Task, force: bool) -> None:
    """clearml-server's 400/123: a task with published children or published output models
    is deleted (or reset) only with force."""
    if force:
        return
    children = Task.objects.filter(parent=task, status=TaskStatus.PUBLISHED).count()
    if children:
        raise ApiError(
            400, f"task cannot be deleted: it has {children} published children, use force", 123
        )
    published, _ = _models_of(task)
    if published:
        raise ApiError(
            400,
            f"task cannot be deleted: it has {len(published)} published models, use force",
            123,
        )


def clean_up(task: Task, *, force: bool, delete_output_models: bool, deleting: bool) -> Cleanup:
    """Delete the task's draft output models (those no task takes as input), unlink its
    published ones, and say which file URLs were its own."""
    check_removable(task, force)
    published, drafts = _models_of(task)
    in_use = {m.pk for m in drafts if tasks_using(m.pk)}
    result = Cleanup(
        model_urls=[str(m.uri) for m in drafts if m.uri and m.pk not in in_use],
        artifact_urls=[
            str(doc["uri"])
            for doc in (artifact_doc(a) for a in task.artifacts.all())
            if doc.get("mode", "output") == "output" and doc.get("uri")
        ],
    )
    if deleting:
        result.updated_children = Task.objects.filter(parent=task).count()
    kept = list(published)
    if delete_output_models:
        doomed = [m.pk for m in drafts if m.pk not in in_use]
        result.deleted_models = RegisteredModel.objects.filter(pk__in=doomed).delete()[0]
        in_use_drafts = [m.pk for m in drafts if m.pk in in_use]
    else:
        kept += drafts
        in_use_drafts = []
    # Kept models outlive the task (ours have no task then; ClearML's name a deleted one).
    now = timezone.now()
    mine = RegisteredModel.objects.filter(task=task)
    mine.filter(pk__in=in_use_drafts).update(task=None, last_update=now)
    updated = mine.filter(pk__in=[m.pk for m in kept]).update(task=None, last_update=now)
    if deleting:
        result.updated_models = updated
    return result
