"""Faults injected inside the server process (reliability.md R8, R24).

A full disk and a transaction that rolls back are set up in-process (pytest-django and DRF's
APIClient): a real server gives no hook for either. The e2e halves of R8 are in
test_faults_steps.py.
"""

import errno
import hashlib
import os

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import transaction
from rest_framework.test import APIClient

from tests.factories import make_base_task, make_user
from webapp.core import broker, services
from webapp.core.choices import ApiKeyKind
from webapp.core.keys import create_api_key
from webapp.core.models import Artifact

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]


class FullDiskStorage(FileSystemStorage):
    """A disk that fills up 64 KiB into any file, leaving that much of it behind."""

    def _save(self, name, content):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            for chunk in content.chunks():
                handle.write(chunk[: 64 * 1024])
                break
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


@pytest.fixture
def published(monkeypatch):
    """The run messages the broker would have been given."""
    sent = []
    monkeypatch.setattr(broker, "publish_run", lambda *message: sent.append(message) or True)
    return sent


def test_enqueue_publishes_only_after_commit_and_never_after_a_rollback(
    published, django_capture_on_commit_callbacks
):
    user = make_user()
    base = make_base_task(user, "step")
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            task = services.enqueue_task(services.clone_task(base, user=user), "default")
            # inside the transaction nothing is on the broker yet
            assert published == []
    assert published == [(task.id, 1, "default")]
    published.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.enqueue_task(services.clone_task(base, user=user), "default")
            raise RuntimeError("rolled back")
    assert callbacks == [] and published == []


@pytest.fixture
def full_disk(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": f"{__name__}.FullDiskStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
    return tmp_path / "artifacts"


def _client(user) -> APIClient:
    client = APIClient()
    _, secret = create_api_key(user, kind=ApiKeyKind.USER)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_full_disk_refuses_the_upload_with_507_and_stores_nothing(full_disk):
    user = make_user()
    client = _client(user)
    task = client.post(
        "/api/v1/tasks/", {"project_name": "p", "name": "t", "start_running": True}, format="json"
    ).json()
    content = os.urandom(256 * 1024)
    declared = client.post(
        f"/api/v1/tasks/{task['id']}/artifacts/",
        {
            "name": "weights",
            "kind": "file",
            "filename": "w.bin",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        },
        format="json",
    ).json()
    # when the bytes arrive and the disk fills up while they are written
    response = client.put(
        f"/api/v1/artifacts/{declared['id']}/upload/",
        {"file": _named(content, "w.bin")},
        format="multipart",
    )
    # then the answer says so in JSON, the artifact stays pending, no partial file is left
    assert response.status_code == 507, response.content
    assert response.json()["error"] == "storage_full"
    assert "no space left" in response.json()["detail"]
    assert Artifact.objects.get(pk=declared["id"]).state == "pending"
    assert not [p for p in full_disk.rglob("*") if p.is_file()]
    # and the server goes on answering
    assert client.get(f"/api/v1/tasks/{task['id']}/").status_code == 200
    # a debug sample hitting the same full disk is refused the same way
    sample = client.post(
        f"/api/v1/tasks/{task['id']}/samples/",
        {"title": "t", "series": "s", "iteration": "0", "file": _named(b"\x89PNG" * 10, "a.png")},
        format="multipart",
    )
    assert sample.status_code == 507 and sample.json()["error"] == "storage_full"
    assert not [p for p in full_disk.rglob("*") if p.is_file()]


def _named(content: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    content_type = "image/png" if name.endswith(".png") else "application/octet-stream"
    return SimpleUploadedFile(name, content, content_type=content_type)


def test_console_requests_stay_small_however_wide_the_lines():
    """R25: the worker cuts console batches by size too, so none is refused as too large."""
    import json

    from pipelines.worker.step_console import MAX_POST_BYTES, _chunks

    lines = [{"stream": "stdout", "text": f"{i} " + "\u00e9\U0001f600" * 4000} for i in range(300)]
    lines += [{"stream": "stdout", "text": "x" * 10_000} for _ in range(300)]
    chunks = list(_chunks(lines))
    assert [line for chunk in chunks for line in chunk] == lines
    for chunk in chunks:
        body = json.dumps({"lines": chunk, "batch_id": "0" * 32}, allow_nan=False)
        assert len(body.encode()) <= MAX_POST_BYTES + 64
