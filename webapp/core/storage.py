"""Artifact bytes live in STORAGES["artifacts"]; keys are built from ids, never from names."""

import errno
import hashlib
import logging
import re

from django.conf import settings
from django.core.files.storage import storages
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

from .errors import DomainError

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def artifact_storage():
    return storages["artifacts"]


def safe_filename(name: str) -> str:
    """A basename with no separators, no leading dots and no traversal, never empty."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip(".")[:200]
    return cleaned or "file"


def artifact_key(task_id: str, artifact_id: str, filename: str) -> str:
    return f"tasks/{task_id}/artifacts/{artifact_id}/{safe_filename(filename)}"


def sample_key(task_id: str, sample_id: int, filename: str) -> str:
    return f"tasks/{task_id}/samples/{sample_id}/{safe_filename(filename)}"


class StorageFull(DomainError):
    """The artifact storage has no room for these bytes (a full disk, a quota)."""

    status_code = 507
    code = "storage_full"


class StorageUnavailable(DomainError):
    """The artifact storage failed to take these bytes for another reason."""

    status_code = 503
    code = "storage_unavailable"


def save_bytes(key: str, content) -> str:
    """Store `content` at `key` (or a free name next to it); returns the key used.

    A failed write leaves nothing behind, since FileSystemStorage writes straight into the
    final path, and becomes a DomainError: 507 when storage is full, 503 otherwise.
    """
    storage = artifact_storage()
    name = storage.get_available_name(key)
    try:
        return storage.save(name, content)
    except Exception as error:
        delete_key(name)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            logger.error("artifact storage is full, could not store %s: %s", name, error)
            raise StorageFull(
                "artifact storage is full (no space left on the device): nothing was stored"
            ) from error
        logger.exception("artifact storage could not store %s", name)
        raise StorageUnavailable(f"artifact storage failed: {error}") from error


def delete_key(key: str) -> None:
    if not key:
        return
    try:
        artifact_storage().delete(key)
    except Exception:  # noqa: BLE001 - a missing file must not stop a reset
        logger.warning("could not delete %s from artifact storage", key, exc_info=True)


def delete_task_outputs(task) -> None:
    """Remove everything a run produced: console, results, artifacts and their bytes."""
    for key in task.artifacts.values_list("storage_key", flat=True):
        delete_key(key)
    for key in task.debug_samples.values_list("storage_key", flat=True):
        delete_key(key)
    task.artifacts.all().delete()
    task.debug_samples.all().delete()
    task.log_lines.all().delete()
    task.scalars.all().delete()
    task.plots.all().delete()


class UploadTooLarge(StopUpload):
    """Raised from the upload handler so the body is not read past the limit."""


# Multipart framing around one file (boundaries, part headers) stays far below this.
MULTIPART_SLACK = 64 * 1024


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Streams an upload to a temporary file while hashing it, refusing it past the limit.

    One pass over the bytes: nothing is held in memory and nothing is read twice. The limit
    is ARTIFACT_MAX_BYTES, or less when the caller knows the size to expect (`max_bytes`).
    A body whose Content-Length is already too large is refused before a byte is read;
    one that grows past the limit (chunked, or a lying Content-Length) is cut off there.
    Either way the request ends in UploadTooLarge (413), never in "no file".
    """

    def __init__(self, request=None, max_bytes: int | None = None):
        super().__init__(request)
        limit = settings.ARTIFACT_MAX_BYTES
        self.max_bytes = limit if max_bytes is None else min(max_bytes, limit)
        self.too_large = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.max_bytes + MULTIPART_SLACK:
            self.too_large = True
            raise UploadTooLarge(connection_reset=True)
        return super().handle_raw_input(input_data, META, content_length, boundary, encoding)

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.sha256 = hashlib.sha256()
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            # Django's parser swallows StopUpload and returns the form without the file;
            # upload_complete() raises again so the caller sees why.
            self.too_large = True
            raise UploadTooLarge(connection_reset=True)
        self.sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def upload_complete(self):
        if self.too_large:
            raise UploadTooLarge(connection_reset=True)
        return super().upload_complete()

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.sha256.hexdigest()
        return uploaded
