"""Artifact verbs: declare (pending), store verified bytes (ready), look up for download."""

import logging
from urllib.parse import quote

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from .choices import ArtifactKind, ArtifactState, TaskStatus
from .errors import Conflict, InvalidInput, TooLarge
from .models import Artifact, Task
from .storage import (
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
    sha256: str,
    base_url: str,
    metadata: dict | None = None,
    preview: str = "",
    content_type: str = "",
) -> Artifact:
    """Create or replace the (task, name) artifact as `pending`, awaiting its bytes."""
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise InvalidInput("artifact name must be 1-255 characters")
    if kind not in ArtifactKind.values:
        raise InvalidInput(f"unknown artifact kind {kind!r}", allowed=ArtifactKind.values)
    if not isinstance(size, int) or size < 0:
        raise InvalidInput("size must be a non-negative integer")
    if size > settings.ARTIFACT_MAX_BYTES:
        raise TooLarge(
            f"artifact is {size} bytes; the limit is {settings.ARTIFACT_MAX_BYTES} bytes"
        )
    if len(sha256 or "") != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidInput("sha256 must be 64 lowercase hex characters")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInput("metadata must be an object")
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
    return _publish(artifact, saved_key)


class LengthRequired(InvalidInput):
    status_code = 411
    code = "length_required"


def receive_artifact_body(artifact: Artifact, body, content_length: int | None) -> Artifact:
    """Store a raw request body as the artifact's bytes, verified, then publish it `ready`.

    The length is checked before a byte of the body is read: more than declared is 413, less
    is 400. The bytes are hashed once as they stream into storage (see storage.py); a
    mismatch, a short body or a failed write leaves the artifact pending and nothing stored.
    """
    if content_length is None:
        raise LengthRequired("a raw upload needs a Content-Length")
    if content_length > artifact.size:
        raise TooLarge(
            f"artifact {artifact.name!r}: body is {content_length} bytes, declared {artifact.size}"
        )
    if content_length < artifact.size:
        raise InvalidInput(
            f"artifact {artifact.name!r}: body is {content_length} bytes, declared {artifact.size}"
        )
    key = artifact_key(artifact.task_id, artifact.id, artifact.filename)
    saved_key = store_verified_body(key, body, artifact.size, artifact.sha256)
    return _publish(artifact, saved_key)


def _publish(artifact: Artifact, saved_key: str) -> Artifact:
    """Mark verified bytes at `saved_key` ready, unless the artifact was re-declared."""
    old_key = artifact.storage_key
    with transaction.atomic():
        updated = Artifact.objects.filter(
            pk=artifact.pk, sha256=artifact.sha256, size=artifact.size
        ).update(state=ArtifactState.READY, storage_key=saved_key, updated=timezone.now())
    if not updated:
        delete_key(saved_key)
        raise Conflict(f"artifact {artifact.name!r} was re-declared during the upload")
    if old_key and old_key != saved_key:
        delete_key(old_key)
    artifact.refresh_from_db()
    return artifact


def open_artifact(artifact: Artifact):
    if not artifact.is_ready:
        raise Conflict(f"artifact {artifact.name!r} is still pending: its upload did not finish")
    return artifact_storage().open(artifact.storage_key, "rb")
