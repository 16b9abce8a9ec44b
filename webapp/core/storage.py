"""Artifact bytes live in STORAGES["artifacts"]; keys are built from ids, never from names."""

import hashlib
import logging
import re

from django.conf import settings
from django.core.files.storage import storages
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

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


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Streams an upload to a temporary file while hashing it, refusing it past the limit.

    One pass over the bytes: nothing is held in memory and nothing is read twice.
    """

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.sha256 = hashlib.sha256()
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.ARTIFACT_MAX_BYTES:
            raise UploadTooLarge(connection_reset=True)
        self.sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self.sha256.hexdigest()
        return uploaded
