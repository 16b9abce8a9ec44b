"""tasks.add_or_update_artifacts / add_or_update_model: a task's outputs.

ClearML artifacts become our Artifact rows (so our dashboard lists and serves them); the
object on our ClearML file server is their bytes. The SDK registers an artifact before its
background upload finishes, so a row stays `pending` until the file server has the object.
"""

import re

from django.db import transaction
from django.utils import timezone

from webapp.core import artifacts as core_artifacts
from webapp.core.errors import Conflict
from webapp.core.models import Artifact

from ..convert import artifact_kind
from ..documents import extra_of, file_path_of, get_task
from ..envelope import ApiError, bad_request
from ..fileserver import stored_object
from ..query import as_list
from ..registry import endpoint

SHA256 = re.compile(r"^[0-9a-f]{64}$")


def upsert_artifact(call, task, item: dict) -> Artifact:
    key = str(item.get("key") or "").strip()
    if not key:
        raise bad_request("every artifact needs a key")
    uri = str(item.get("uri") or "")
    path = file_path_of(uri)
    filename = (path or uri).rstrip("/").rsplit("/", 1)[-1] or key
    digest = str(item.get("hash") or "").lower()
    try:
        size = max(0, int(item.get("content_size") or 0))
    except (TypeError, ValueError):
        size = 0
    type_data = item.get("type_data") or {}
    try:
        artifact = core_artifacts.declare_artifact(
            task,
            name=key,
            kind=artifact_kind(item.get("type")),
            filename=filename,
            size=size,
            # Until the bytes arrive their hash is the SDK's word; the file server records
            # the hash of what it actually stored.
            sha256=digest if SHA256.match(digest) else "0" * 64,
            base_url=call.request.build_absolute_uri("/"),
            preview=str(type_data.get("preview") or ""),
            content_type=str(type_data.get("content_type") or ""),
            metadata={"clearml": item, "clearml_path": path or ""},
        )
    except Conflict as error:
        raise ApiError(400, error.message, 110) from error
    found = stored_object(path, task) if path else None
    if found is not None:
        artifact = core_artifacts.attach_stored_bytes(artifact, *found)
    return artifact


@endpoint("tasks.add_or_update_artifacts", verb="task.outputs")
def add_or_update_artifacts(call):
    task = get_task(call, call.require("task"))
    items = [item for item in as_list(call.get("artifacts")) if isinstance(item, dict)]
    with transaction.atomic():
        for item in items:
            item.setdefault("mode", "output")
            item.setdefault("timestamp", int(timezone.now().timestamp()))
            upsert_artifact(call, task, item)
    return {"updated": len(items)}


@endpoint("tasks.delete_artifacts", verb="task.outputs")
def delete_artifacts(call):
    task = get_task(call, call.require("task"))
    keys = [str(a.get("key")) for a in as_list(call.get("artifacts")) if isinstance(a, dict)]
    return {"deleted": core_artifacts.forget_artifacts(task, keys)}


@endpoint("tasks.add_or_update_model", verb="task.outputs")
def add_or_update_model(call):
    task = get_task(call, call.require("task"))
    kind = "input" if call.get("type") == "input" else "output"
    name = str(call.get("name") or "")
    model_id = str(call.require("model"))
    extra = extra_of(task)
    models = dict(extra.task_models or {})
    entry = {"name": name, "model": model_id, "updated": timezone.now().isoformat()}
    entries = list(models.get(kind, []))
    # Updated where it stands (clearml-server keeps the list's order), else added last.
    at = next((i for i, m in enumerate(entries) if m.get("name") == name), None)
    if at is None:
        entries.append(entry)
    else:
        entries[at] = entry
    models[kind] = entries
    extra.task_models = models
    extra.save()
    return {"updated": 1}


@endpoint("tasks.delete_models", verb="task.outputs")
def delete_models(call):
    task = get_task(call, call.require("task"))
    extra = extra_of(task)
    models = dict(extra.task_models or {})
    for item in as_list(call.get("models")):
        kind = "input" if item.get("type") == "input" else "output"
        models[kind] = [m for m in models.get(kind, []) if m.get("name") != item.get("name")]
    extra.task_models = models
    extra.save()
    return {"updated": 1}
