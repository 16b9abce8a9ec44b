"""Artifact verbs: declare (pending), store verified bytes (ready), look up for download."""

import logging
from urllib.parse import quote

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from . import hooks, limits
from .choices import ArtifactKind, ArtifactState, TaskStatus
from .errors import Conflict, InvalidInput, TooLarge
from .models import Artifact, Task
from .storage import (
    DIGEST_BYTES,
    artifact_key,
    artifact_storage,
    delete_key,
    safe_filename,
    save_bytes,
    store_verified_body,
)

logger = logging.getLogger(__name__)

WRITABLE_STATES = (TaskStatus.CREATED, TaskStatus.IN_PROGRESS)


def declare_artifact(
    task: Task,
    *,
    name: str,
    kind: str,
    filename: str,
    size: int,
    sha256: str = "",
    base_url: str,
    metadata: dict | None = None,
    preview: str = "",
    content_type: str = "",
) -> Artifact:
    """Create or replace the (task, name) artifact as `pending`, awaiting its bytes.

    `sha256` may be left out when the bytes will carry it (a raw upload with a trailing
    sha256, see receive_artifact_body).
    """
    name = (name if isinstance(name, str) else "").strip()
    if not name or len(name) > limits.NAME_MAX:
        raise InvalidInput("artifact name must be 1-255 characters", field="name")
    if kind not in ArtifactKind.values:
        raise InvalidInput(f"unknown artifact kind {kind!r}", allowed=ArtifactKind.values)
    limits.integer("size", size, 0, limits.INT64_MAX)
    if size > settings.ARTIFACT_MAX_BYTES:
        raise TooLarge(
            f"artifact is {size} bytes; the limit is {settings.ARTIFACT_MAX_BYTES} bytes"
        )
    sha256 = sha256 or ""
    if sha256 and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise InvalidInput("sha256 must be 64 lowercase hex characters")
    if metadata is not None:
        limits.json_object("metadata", metadata)
    if task.status not in WRITABLE_STATES:
        raise Conflict(
            f"task {task.id} is {task.status}: artifacts can only be added while it is a "
            "draft or running",
            status=task.status,
        )
    with transaction.atomic():
        artifact, _ = Artifact.objects.select_for_update().get_or_create(
            task=task, name=name, defaults={"kind": kind, "filename": "file"}
        )
        artifact.kind = kind
        artifact.filename = safe_filename(filename)
        artifact.size = size
        artifact.sha256 = sha256
        artifact.metadata = metadata or {}
        artifact.preview = (preview or "")[:4000]
        artifact.content_type = content_type[:255]
        artifact.state = ArtifactState.PENDING
        artifact.url = f"{base_url.rstrip('/')}/files/{artifact.id}/{quote(artifact.filename)}"
        artifact.updated = timezone.now()
        artifact.save()
    return artifact


def store_artifact_content(artifact: Artifact, uploaded) -> Artifact:
    """Verify the received bytes against the declaration, then publish them as `ready`.

    `uploaded` comes from HashingUploadHandler (carries .sha256). On a mismatch nothing is
    written at the final key and the artifact stays pending.
    """
    received_sha = getattr(uploaded, "sha256", None)
    if not artifact.sha256:
        raise InvalidInput(
            f"artifact {artifact.name!r} was declared without a sha256: declare one to upload "
            "it as multipart, or PUT it to content/ with its sha256 after the bytes"
        )
    if uploaded.size != artifact.size:
        raise InvalidInput(
            f"artifact {artifact.name!r}: received {uploaded.size} bytes, declared {artifact.size}"
        )
    if received_sha != artifact.sha256:
        raise InvalidInput(f"artifact {artifact.name!r}: sha256 of the received bytes differs")
    storage = artifact_storage()
    key = artifact_key(artifact.task_id, artifact.id, artifact.filename)
    if storage.exists(key):
        storage.delete(key)
    saved_key = save_bytes(key, File(uploaded, name=artifact.filename))
    return _publish(artifact, saved_key, received_sha)


class LengthRequired(InvalidInput):
    status_code = 411
    code = "length_required"


def receive_artifact_body(
    artifact: Artifact, body, content_length: int | None, trailing_sha256: bool = False
) -> Artifact:
    """Store a raw request body as the artifact's bytes, verified, then publish it `ready`.

    With `trailing_sha256` the body is the bytes and then their SHA-256 (32 bytes, binary),
    which must match, as must a sha256 declared beforehand. Without it, the declaration
    must have one. The length is checked before a byte of the body is read: more than
    expected is 413, less is 400. The bytes are hashed once as they stream into storage
    (see storage.py); a mismatch, a short body or a failed write leaves the artifact pending
    and nothing stored.
    """
    if not trailing_sha256 and not artifact.sha256:
        raise InvalidInput(
            f"artifact {artifact.name!r} was declared without a sha256: send it after the "
            "bytes (X-Content-SHA256: trailing)"
        )
    expected = artifact.size + (DIGEST_BYTES if trailing_sha256 else 0)
    what = f"declared {artifact.size}" + (" + a 32-byte sha256" if trailing_sha256 else "")
    if content_length is None:
        raise LengthRequired("a raw upload needs a Content-Length")
    if content_length > expected:
        raise TooLarge(f"artifact {artifact.name!r}: body is {content_length} bytes, {what}")
    if content_length < expected:
        raise InvalidInput(f"artifact {artifact.name!r}: body is {content_length} bytes, {what}")
    key = artifact_key(artifact.task_id, artifact.id, artifact.filename)
    saved_key, sha256 = store_verified_body(
        key, body, artifact.size, artifact.sha256, trailing_sha256
    )
    return _publish(artifact, saved_key, sha256)


def _publish(artifact: Artifact, saved_key: str, sha256: str) -> Artifact:
    """Mark verified bytes at `saved_key` ready, unless the artifact was re-declared (its
    declaration is matched by the time it was made, as well as by size and sha256)."""
    old_key = artifact.storage_key
    with transaction.atomic():
        updated = Artifact.objects.filter(
            pk=artifact.pk, sha256=artifact.sha256, size=artifact.size, updated=artifact.updated
        ).update(
            state=ArtifactState.READY, storage_key=saved_key, sha256=sha256, updated=timezone.now()
        )
        if updated:
            artifact.refresh_from_db()
            hooks.notify(hooks.ARTIFACT_READY, artifact)
    if not updated:
        delete_key(saved_key)
        raise Conflict(f"artifact {artifact.name!r} was re-declared during the upload")
    if old_key and old_key != saved_key:
        delete_key(old_key)
    return artifact


def attach_stored_bytes(artifact: Artifact, storage_key: str, size: int, sha256: str):
    """Mark an artifact ready whose bytes were stored under `storage_key` by another route
    (ClearML's file server), recording the size and sha256 of the bytes actually stored."""
    with transaction.atomic():
        Artifact.objects.filter(pk=artifact.pk).update(
            state=ArtifactState.READY,
            storage_key=storage_key,
            size=size,
            sha256=sha256,
            updated=timezone.now(),
        )
        artifact.refresh_from_db()
        hooks.notify(hooks.ARTIFACT_READY, artifact)
    return artifact


def forget_artifacts(task: Task, names) -> int:
    """Delete the artifact rows of `task` called `names` (ClearML's `tasks.delete_artifacts`:
    the bytes stay where they were stored, under the file server's own paths)."""
    deleted, _ = Artifact.objects.filter(task=task, name__in=list(names)).delete()
    return deleted


def bytes_removed(storage_key: str) -> None:
    """Bytes at `storage_key` were deleted (from ClearML's file server): an artifact that
    pointed at them falls back to pending."""
    Artifact.objects.filter(storage_key=storage_key).update(
        state=ArtifactState.PENDING, storage_key="", updated=timezone.now()
    )


def open_artifact(artifact: Artifact):
    if not artifact.is_ready:
        raise Conflict(f"artifact {artifact.name!r} is still pending: its upload did not finish")
    return artifact_storage().open(artifact.storage_key, "rb")
