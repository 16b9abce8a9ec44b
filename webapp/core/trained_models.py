"""Model verbs: declare a task's output model (pending), store its verified weights (ready),
record a model a task used, open the weights for download.

A model is an artifact-like row: its bytes are stored and checked like an artifact's and
are never loaded here (a pickle is code; only the user's own process may unpickle it).
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .artifacts import WRITABLE_STATES
from .choices import ArtifactState
from .errors import Conflict, InvalidInput, TooLarge
from .models import ModelInput, Task, TrainedModel
from .storage import (
    DIGEST_BYTES,
    artifact_storage,
    delete_key,
    safe_filename,
    store_verified_body,
)

MAX_TAGS = 50


def model_key(task_id: str, model_id: str, filename: str) -> str:
    return f"tasks/{task_id}/models/{model_id}/{safe_filename(filename)}"


def declare_model(
    task: Task,
    *,
    name: str,
    filename: str,
    size: int,
    base_url: str,
    framework: str = "",
    tags: list | None = None,
    comment: str = "",
    config: dict | None = None,
    labels: dict | None = None,
    package: bool = False,
    iteration: int | None = None,
) -> TrainedModel:
    """Create or replace the (task, name) output model as `pending`, awaiting its weights."""
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise InvalidInput("model name must be 1-255 characters")
    if not isinstance(size, int) or size < 0:
        raise InvalidInput("size must be a non-negative integer")
    if size > settings.ARTIFACT_MAX_BYTES:
        raise TooLarge(f"model is {size} bytes; the limit is {settings.ARTIFACT_MAX_BYTES}")
    tags = list(tags or [])
    if len(tags) > MAX_TAGS or not all(isinstance(t, str) and len(t) <= 255 for t in tags):
        raise InvalidInput(f"tags must be at most {MAX_TAGS} strings of at most 255 characters")
    for field, value in (("config", config), ("labels", labels)):
        if value is not None and not isinstance(value, dict):
            raise InvalidInput(f"{field} must be an object")
    if labels and not all(isinstance(v, int) for v in labels.values()):
        raise InvalidInput("labels map label names to integers")
    if task.status not in WRITABLE_STATES:
        raise Conflict(
            f"task {task.id} is {task.status}: models can only be added while it is a draft "
            "or running",
            status=task.status,
        )
    with transaction.atomic():
        model, _ = TrainedModel.objects.select_for_update().get_or_create(
            task=task, name=name, defaults={"project_id": task.project_id}
        )
        model.framework = str(framework or "")[:64]
        model.tags = tags
        model.comment = str(comment or "")[:10_000]
        model.config = config or {}
        model.labels = labels or {}
        model.filename = safe_filename(filename)
        model.package = bool(package)
        model.iteration = iteration
        model.size = size
        model.sha256 = ""
        model.state = ArtifactState.PENDING
        model.url = f"{base_url.rstrip('/')}/api/v1/models/{model.id}/download/"
        model.updated = timezone.now()
        model.save()
    return model


def receive_model_body(model: TrainedModel, body, content_length: int | None) -> TrainedModel:
    """Store a raw request body (the weights, then their 32-byte SHA-256) as the model's
    bytes, verified as they stream in, then publish it `ready`."""
    expected = model.size + DIGEST_BYTES
    if content_length is None:
        raise InvalidInput("a model upload needs a Content-Length")
    if content_length > expected:
        raise TooLarge(f"model {model.name!r}: body is {content_length} bytes, expected {expected}")
    if content_length < expected:
        raise InvalidInput(
            f"model {model.name!r}: body is {content_length} bytes, expected {expected}"
        )
    key = model_key(model.task_id, model.id, model.filename)
    saved_key, sha256 = store_verified_body(key, body, model.size, "", True)
    old_key = model.storage_key
    with transaction.atomic():
        updated = TrainedModel.objects.filter(
            pk=model.pk, size=model.size, updated=model.updated
        ).update(
            state=ArtifactState.READY, storage_key=saved_key, sha256=sha256, updated=timezone.now()
        )
    if not updated:
        delete_key(saved_key)
        raise Conflict(f"model {model.name!r} was re-declared during the upload")
    if old_key and old_key != saved_key:
        delete_key(old_key)
    model.refresh_from_db()
    return model


def connect_input_model(task: Task, model: TrainedModel, name: str = "") -> ModelInput:
    """Record that `task` uses `model`, under `name` (the model's own name by default)."""
    name = (name or model.name).strip()[:255]
    link, _ = ModelInput.objects.update_or_create(
        task=task, name=name, defaults={"model": model, "connected": timezone.now()}
    )
    return link


def open_model(model: TrainedModel):
    if not model.is_ready:
        raise Conflict(f"model {model.name!r} is still pending: its upload did not finish")
    return artifact_storage().open(model.storage_key, "rb")
