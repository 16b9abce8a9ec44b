"""ClearML's file server on /clearml-files/: multipart upload, download, delete.

Upload: `POST /clearml-files/` with one multipart part per object, named by the object's
path. Download: `GET /clearml-files/<url-quoted path>`. Bytes go to our artifact storage
under a key built from the path's hash (never from the path itself, which is user text);
StoredFile remembers which path is where. An artifact row registered for that URL becomes
`ready` when its object arrives, so our dashboard serves it like any artifact.
"""

import hashlib
import json
import logging
import posixpath
from urllib.parse import unquote

from django.core.files import File
from django.db import transaction
from django.http import FileResponse, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from webapp.core import artifacts
from webapp.core.choices import ArtifactState
from webapp.core.models import Artifact
from webapp.core.storage import (
    HashingUploadHandler,
    UploadTooLarge,
    artifact_storage,
    delete_key,
    safe_filename,
)

from .auth import authenticate
from .connection import close_after_response
from .envelope import ApiError
from .models import StoredFile

logger = logging.getLogger("webapp.compat")


def normalize_path(raw: str) -> str:
    """An object path without leading slashes or `..` (which would name nothing here)."""
    path = unquote(str(raw or "")).replace("\\", "/").lstrip("/")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise ApiError(400, f"invalid object path {raw!r}")
    return "/".join(parts)


def path_hash(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


def stored_object(path: str) -> tuple[str, int, str] | None:
    """(storage key, size, sha256) of an object on the file server, if it is there."""
    try:
        row = StoredFile.objects.filter(path_hash=path_hash(normalize_path(path))).first()
    except ApiError:
        return None
    return (row.storage_key, row.size, row.sha256) if row else None


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
def files_view(request, path: str = ""):
    close_after_response(request)
    try:
        authenticate(request)
        if request.method == "POST":
            return _upload(request)
        if request.method in ("GET", "HEAD"):
            return _download(request, normalize_path(path))
        if request.method == "DELETE":
            return _delete(normalize_path(path))
        return _error(405, f"method {request.method} not allowed")
    except ApiError as error:
        response = _error(error.code, error.message)
        for name, value in error.headers.items():
            response[name] = value
        return response
    except UploadTooLarge:
        return _error(413, "object too large")


def _upload(request) -> HttpResponse:
    # Hash while streaming to a temporary file: no second read, nothing held in memory.
    request.upload_handlers = [HashingUploadHandler(request)]
    if request.path.rstrip("/").endswith("/delete_many"):
        return _delete_many(request)
    saved = []
    for field, uploaded in request.FILES.items():
        path = normalize_path(field)
        _store(path, uploaded)
        saved.append(path)
    if not saved:
        return _error(400, "no file in the request (multipart field name = object path)")
    return JsonResponse(saved, safe=False)


def _store(path: str, uploaded) -> StoredFile:
    digest = path_hash(path)
    key = f"clearml-files/{digest[:2]}/{digest}/{safe_filename(posixpath.basename(path))}"
    storage = artifact_storage()
    if storage.exists(key):
        storage.delete(key)
    key = storage.save(key, File(uploaded, name=posixpath.basename(key)))
    now = timezone.now()
    with transaction.atomic():
        row, _ = StoredFile.objects.update_or_create(
            path_hash=digest,
            defaults={
                "path": path,
                "storage_key": key,
                "size": uploaded.size,
                "sha256": getattr(uploaded, "sha256", ""),
                "content_type": getattr(uploaded, "content_type", "") or "",
                "updated": now,
            },
        )
        # Artifacts registered for this URL before the upload finished are ready now.
        waiting = Artifact.objects.filter(metadata__clearml_path=path).exclude(
            state=ArtifactState.READY, storage_key=key
        )
        for artifact in waiting:
            artifacts.attach_stored_bytes(artifact, key, row.size, row.sha256)
    return row


def _download(request, path: str) -> HttpResponse:
    row = StoredFile.objects.filter(path_hash=path_hash(path)).first()
    if row is None or not artifact_storage().exists(row.storage_key):
        return _error(404, f"no such object: {path}")
    content_type = row.content_type or "application/octet-stream"
    if request.method == "HEAD":
        response = HttpResponse(content_type=content_type)
        response["Content-Length"] = str(row.size)
        return response
    response = FileResponse(
        artifact_storage().open(row.storage_key, "rb"), content_type=content_type
    )
    response["Content-Length"] = str(row.size)
    return response


def _delete(path: str) -> HttpResponse:
    row = StoredFile.objects.filter(path_hash=path_hash(path)).first()
    if row is None:
        return _error(404, f"no such object: {path}")
    artifacts.bytes_removed(row.storage_key)
    delete_key(row.storage_key)
    row.delete()
    return JsonResponse({"deleted": path})


def _delete_many(request) -> HttpResponse:
    try:
        files = json.loads(request.body or b"{}").get("files", [])
    except (ValueError, AttributeError):
        return _error(400, 'expected {"files": [paths]}')
    deleted, errors = [], {}
    for raw in files:
        try:
            path = normalize_path(raw)
        except ApiError as error:
            errors[str(raw)] = error.message
            continue
        if _delete(path).status_code == 200:
            deleted.append(path)
        else:
            errors[path] = "not found"
    return JsonResponse({"deleted": deleted, "errors": errors})
