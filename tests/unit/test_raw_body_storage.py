"""store_verified_body: a raw request body is stored only once its size and sha256 match,
whether the sha256 was declared before the body or sent after the bytes (trailing)."""

import hashlib
import io

import pytest

from webapp.core.errors import InvalidInput
from webapp.core.storage import artifact_storage, store_verified_body

KEY = "tasks/t1/artifacts/a1/blob.bin"


@pytest.fixture(params=["local", "remote"])
def storage(request, settings, tmp_path):
    backend = {
        "local": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
        # any backend that is not a local folder takes the streaming path (S3, GCS, Azure)
        "remote": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }[request.param]
    settings.STORAGES = {**settings.STORAGES, "artifacts": backend}
    return artifact_storage()


def _files(storage, folder="") -> list[str]:
    folders, files = storage.listdir(folder)
    found = [f"{folder}/{name}".lstrip("/") for name in files]
    for sub in folders:
        found += _files(storage, f"{folder}/{sub}".lstrip("/"))
    return found


def test_matching_bytes_are_stored_and_nothing_else_is_left(storage):
    data = b"x" * (5 * 1024 * 1024 + 7)
    digest = hashlib.sha256(data).hexdigest()
    key, stored_digest = store_verified_body(KEY, io.BytesIO(data), len(data), digest)
    assert stored_digest == digest
    with storage.open(key, "rb") as handle:
        assert handle.read() == data
    assert _files(storage) == [key]


@pytest.mark.parametrize("cut", [0, 1])
def test_a_mismatch_or_a_short_body_stores_nothing(storage, cut):
    data = b"y" * (1024 * 1024)
    declared = hashlib.sha256(b"something else" if not cut else data).hexdigest()
    with pytest.raises(InvalidInput):
        store_verified_body(KEY, io.BytesIO(data[: len(data) - cut]), len(data), declared)
    assert _files(storage) == []


def test_bytes_followed_by_their_sha256_are_stored_without_a_declared_one(storage):
    data = b"t" * (5 * 1024 * 1024 + 3)
    body = io.BytesIO(data + hashlib.sha256(data).digest())
    key, digest = store_verified_body(KEY, body, len(data), trailing=True)
    assert digest == hashlib.sha256(data).hexdigest()
    with storage.open(key, "rb") as handle:
        assert handle.read() == data  # the trailing sha256 is not part of the stored bytes
    assert _files(storage) == [key]


@pytest.mark.parametrize(
    "trailer, declared",
    [
        (hashlib.sha256(b"other bytes").digest(), ""),  # sent after them, but wrong
        (hashlib.sha256(b"z" * 4096).digest()[:31], ""),  # the body ends inside it
        (hashlib.sha256(b"z" * 4096).digest(), "0" * 64),  # right, but not what was declared
    ],
)
def test_a_wrong_or_cut_trailing_sha256_stores_nothing(storage, trailer, declared):
    data = b"z" * 4096
    with pytest.raises(InvalidInput, match="sha256"):
        store_verified_body(KEY, io.BytesIO(data + trailer), len(data), declared, trailing=True)
    assert _files(storage) == []
