"""The SDK's raw upload body: the file's bytes, then their sha256, hashed as they are sent."""

import hashlib
import os

import pytest

from pipelines.client import UPLOAD_CHUNK, FileChangedError, _HashedFileBody


def test_the_body_is_the_file_then_its_sha256(tmp_path):
    data = os.urandom(2 * UPLOAD_CHUNK + 777)  # the buffers are reused; the last is partial
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    body = _HashedFileBody(path, len(data))
    sent = b"".join(bytes(block) for block in body)
    assert len(body) == len(sent) == len(data) + 32
    assert sent == data + hashlib.sha256(data).digest()
    # a retry starts it over from the beginning
    assert b"".join(bytes(block) for block in body) == sent


@pytest.mark.parametrize("change", ["append", "truncate", "rewrite"])
def test_a_file_that_changes_while_it_is_sent_fails_before_its_sha256(tmp_path, change):
    data = os.urandom(2 * UPLOAD_CHUNK)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    blocks = iter(_HashedFileBody(path, len(data)))
    next(blocks)  # the first block is on its way
    if change == "append":
        with open(path, "ab") as handle:
            handle.write(b"more")
    elif change == "truncate":
        os.truncate(path, UPLOAD_CHUNK + 10)
    else:  # same size, new bytes
        with open(path, "r+b") as handle:
            handle.seek(UPLOAD_CHUNK)
            handle.write(os.urandom(UPLOAD_CHUNK))
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(FileChangedError):
        list(blocks)  # no sha256 is sent: the server gets a short body and stores nothing


def test_a_file_that_changed_since_its_size_was_taken_sends_nothing_of_it(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"now longer than when it was declared")
    with pytest.raises(FileChangedError):
        list(_HashedFileBody(path, 10))


def test_an_empty_file_is_just_its_sha256(tmp_path):
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    assert b"".join(_HashedFileBody(path, 0)) == hashlib.sha256(b"").digest()
