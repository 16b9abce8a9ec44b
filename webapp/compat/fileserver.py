"""ClearML's file server on /clearml-files/: multipart upload, download, delete.

Upload: `POST /clearml-files/` with one multipart part per object, named by the object's
path. Download: `GET /clearml-files/<url-quoted path>`. Bytes go to our artifact storage
under a key built from the path's hash (never from the path itself, which is user text);
StoredFile remembers which path is where. An artifact row registered for that URL becomes
`ready` when its object arrives, so our dashboard serves it like any artifact.

Every object belongs to a task: the SDK puts files under `<project>/<task name>.<task
id>/...` (artifacts/, models/, metrics/), so the first path segment ending in `.<task id>`
of an existing task names the owner. Reading needs the policy's task.read on that task,
writing and deleting its task.outputs; a path naming no such task is refused.
"""

import hashlib
import json
import logging
import os
import posixpath
import re
from urllib.parse import unquote

from django.core.files import File
from django.db import transaction
from django.http import FileResponse, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from webapp.core import access, artifacts, policy
from webapp.core.choices import ArtifactState
from webapp.core.models import Artifact, Task
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


# Control characters (NUL included) name nothing a client means, and PostgreSQL's text
# columns refuse NUL outright.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TASK_SEGMENT = re.compile(r"\.([0-9a-f]{32})$")


def normalize_path(raw: str, *, quoted: bool = True) -> str:
    """An object path without leading slashes, `.` or `..` (which would name nothing here)
    or control characters. Only a key built from its hash reaches the storage.

    The SDK names an upload by its URL-quoted path; a URL's path arrives decoded already
    (`quoted=False`), and decoding it twice would make `%252e` a `.` on the way down only.
    """
    path = unquote(str(raw or "")) if quoted else str(raw or "")
    path = path.replace("\\", "/").lstrip("/")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts or ".." in parts or CONTROL.search(path) or len(path) > 4096:
        raise ApiError(400, f"invalid object path {raw!r}")
    return "/".join(parts)


def path_hash(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()


def owning_task(path: str) -> Task | None:
    """The task an object path belongs to: the first segment `<name>.<task id>` naming an
    existing task (the SDK's layout; a project id in a long project's folder names none)."""
    ids = [m.group(1) for part in path.split("/") if (m := TASK_SEGMENT.search(part))]
    if not ids:
        return None
    found = {t.pk: t for t in Task.objects.filter(pk__in=ids).select_related("project")}
    return next((found[i] for i in ids if i in found), None)


def stored_object(path: str, task: Task) -> tuple[str, int, str] | None:
    """(storage key, size, sha256) of the object at `path` (decoded, as file_path_of gives
    it) if it is there and belongs to `task`: another task's file never becomes this
    task's artifact or debug sample."""
    try:
        path = normalize_path(path, quoted=False)
    except ApiError:
        return None
    owner = owning_task(path)
    if owner is None or owner.pk != task.pk:
        return None
    row = StoredFile.objects.filter(path_hash=path_hash(path)).first()
    return (row.storage_key, row.size, row.sha256) if row else None


def _allowed_task(path: str, user, key, verb: str) -> Task | None:
    """The task owning `path` if this caller sees it and may act on it as `verb`."""
    task = owning_task(path)
    if task is None or not access.visible_tasks(user, key).filter(pk=task.pk).exists():
        return None
    if not access.permits(policy.rule_for(verb, user, key), user, key, task):
        raise ApiError(403, f"this key may not change the files of task {task.pk}")
    return task


def _inside_storage(key: str) -> bool:
    """Whether a key resolves inside the storage root on disk (a symlink planted in the
    storage folder must not lead a read or write elsewhere); object stores have no links."""
    storage = artifact_storage()
    try:
        root = os.path.realpath(storage.location)
        target = os.path.realpath(storage.path(key))
    except (AttributeError, NotImplementedError):
        return True
    return target.startswith(root + os.sep)


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
def files_view(request, path: str = ""):
    close_after_response(request)
    try:
        user, key = authenticate(request)
        if request.method == "POST":
            return _upload(request, user, key)
        if request.method in ("GET", "HEAD"):
            return _download(request, normalize_path(path, quoted=False), user, key)
        if request.method == "DELETE":
            return _delete(normalize_path(path, quoted=False), user, key)
        return _error(405, f"method {request.method} not allowed")
    except ApiError as error:
        response = _error(error.code, error.message)
        for name, value in error.headers.items():
            response[name] = value
        return response
    except policy.Forbidden as error:
        return _error(403, error.message)
    except UploadTooLarge:
        return _error(413, "object too large")


def _upload(request, user, key) -> HttpResponse:
    # Hash while streaming to a temporary file: no second read, nothing held in memory.
    request.upload_handlers = [HashingUploadHandler(request)]
    if request.path.rstrip("/").endswith("/delete_many"):
        return _delete_many(request, user, key)
    # Every part is checked before any is stored: an upload is taken whole or not at all.
    parts = []
    for field, uploaded in request.FILES.items():
        path = normalize_path(field)
        task = _allowed_task(path, user, key, "task.outputs")
        if task is None:
            raise ApiError(403, f"no task you may write to owns the path {path!r}")
        parts.append((path, task, uploaded))
    if not parts:
        return _error(400, "no file in the request (multipart field name = object path)")
    for path, task, uploaded in parts:
        _store(path, task, uploaded)
    return JsonResponse([path for path, _, _ in parts], safe=False)


def _store(path: str, task: Task, uploaded) -> StoredFile:
    digest = path_hash(path)
    key = f"clearml-files/{digest[:2]}/{digest}/{safe_filename(posixpath.basename(path))}"
    storage = artifact_storage()
    if not _inside_storage(key):
        raise ApiError(400, f"the storage location of {path!r} leaves the storage root")
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
        # The task's artifacts registered for this URL before the upload finished are ready.
        waiting = Artifact.objects.filter(task=task, metadata__clearml_path=path).exclude(
            state=ArtifactState.READY, storage_key=key
        )
        for artifact in waiting:
            artifacts.attach_stored_bytes(artifact, key, row.size, row.sha256)
    return row


def _download(request, path: str, user, key) -> HttpResponse:
    # A path of a task the caller does not see answers like a missing one.
    row = None
    if _allowed_task(path, user, key, "task.read") is not None:
        row = StoredFile.objects.filter(path_hash=path_hash(path)).first()
    if (
        row is None
        or not _inside_storage(row.storage_key)
        or not artifact_storage().exists(row.storage_key)
    ):
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


def _delete(path: str, user, key) -> HttpResponse:
    row = None
    if _allowed_task(path, user, key, "task.outputs") is not None:
        row = StoredFile.objects.filter(path_hash=path_hash(path)).first()
    if row is None:
        return _error(404, f"no such object: {path}")
    if not _inside_storage(row.storage_key):
        raise ApiError(400, f"the storage location of {path!r} leaves the storage root")
    artifacts.bytes_removed(row.storage_key)
    delete_key(row.storage_key)
    row.delete()
    return JsonResponse({"deleted": path})


def _delete_many(request, user, key) -> HttpResponse:
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
        try:
            answer = _delete(path, user, key)
        except ApiError as error:
            errors[path] = error.message
            continue
        if answer.status_code == 200:
            deleted.append(path)
        else:
            errors[path] = "not found"
    return JsonResponse({"deleted": deleted, "errors": errors})
