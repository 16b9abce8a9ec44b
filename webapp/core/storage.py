"""Artifact bytes live in STORAGES["artifacts"]; keys are built from ids, never from names."""

import collections
import errno
import hashlib
import io
import logging
import os
import re
import tempfile
import time
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

from .errors import DomainError, InvalidInput

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
        raise storage_error(error, name) from error


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
    for key in task.output_models.values_list("storage_key", flat=True):
        delete_key(key)
    task.artifacts.all().delete()
    task.debug_samples.all().delete()
    task.output_models.all().delete()
    task.input_models.all().delete()
    task.single_values.all().delete()
    task.log_lines.all().delete()
    task.scalars.all().delete()
    task.scalar_series.all().delete()  # and their chart buckets
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


# ---------------------------------------------------------------- raw-body uploads

# Request bodies of raw uploads to the local storage are spooled here, under the storage
# root, so a verified body is renamed into place instead of being copied a second time.
INCOMING = ".incoming"
# `X-Content-SHA256: trailing` on a raw upload: the body is the bytes, then their SHA-256
# (DIGEST_BYTES, binary), so a client can hash what it sends while sending it.
TRAILING_SHA256 = "trailing"
DIGEST_BYTES = 32
STREAM_CHUNK = 4 << 20
# A spooled body is received from the socket in blocks of this size, into buffers kept for
# the whole body: a fresh bytes object per read costs the kernel a page fault for every
# 4 KiB of it, more CPU than the copy itself.
RECEIVE_BLOCK = 1 << 20
# Blocks received and written but not hashed yet. Receiving runs ahead of hashing by this
# much, so neither waits on the other at every block when they share a busy CPU.
HASH_AHEAD = 4


def incoming_dir() -> Path | None:
    """The spool folder of a FileSystemStorage; None for remote backends."""
    storage = artifact_storage()
    if not isinstance(storage, FileSystemStorage):
        return None
    return Path(storage.location) / INCOMING


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class SpooledBody:
    """A request body written once to a file in `folder`, hashed as it arrives.

    It is both the body buffer waitress fills (append/getfile/close, see webapp/serve.py) and
    the file-like Django reads. Nothing stays behind: unless `adopt()` renames the file into
    place, it is removed on close() or when the object is dropped (a client that hangs up).
    A write error (a full disk) is kept in `error` and the rest of the body is dropped, so
    the view can answer 507 instead of the connection being cut.

    With `content_size`, what comes after that many bytes is the body's trailing SHA-256
    (TRAILING_SHA256): kept in `trailer`, neither written nor hashed.
    """

    def __init__(self, folder: Path, content_size: int | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        fd, self.path = tempfile.mkstemp(dir=folder, prefix="body-", suffix=".part")
        self.folder = folder
        self.file = os.fdopen(fd, "w+b", buffering=0)
        self.digest = hashlib.sha256()
        self.size = 0  # content bytes received
        self.content_size = content_size
        self.trailer = bytearray()
        self.error: OSError | None = None
        # hashlib lets go of the GIL on large blocks: one thread per body hashes in order
        # on another core while the next blocks are received and written
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="upload-hash")
        self._hashing: collections.deque = collections.deque()  # updates not done yet
        self._buffers: collections.deque = collections.deque()
        self._finalizer = weakref.finalize(self, _discard, self.path)

    def receive_block(self, sock, limit: int) -> memoryview:
        """Receive up to `limit` bytes from `sock`, to be passed to append() next.

        The buffers are used in turn, one more of them than append() lets wait for their
        hash, so the one being filled has always been hashed.
        """
        if not self._buffers:
            self._buffers.extend(bytearray(RECEIVE_BLOCK) for _ in range(HASH_AHEAD + 1))
        self._buffers.rotate(-1)
        view = memoryview(self._buffers[0])[: min(limit, RECEIVE_BLOCK)]
        return view[: sock.recv_into(view)]

    # waitress buffer protocol
    def append(self, data) -> None:
        if self.content_size is not None and self.size + len(data) > self.content_size:
            room = max(0, self.content_size - self.size)
            self.trailer += data[room:]
            data = data[:room]
        self.size += len(data)
        if self.error is not None or not data:
            return
        while len(self._hashing) >= HASH_AHEAD:
            self._hashing.popleft().result()
        self._hashing.append(self._hasher.submit(self.digest.update, data))
        try:
            view = memoryview(data)
            while view:
                view = view[self.file.write(view) :]
        except OSError as error:
            self.error = error

    def _hashed(self) -> None:
        while self._hashing:
            self._hashing.popleft().result()

    def __len__(self) -> int:
        return self.size + len(self.trailer)

    def getfile(self):
        self._hashed()
        self.file.seek(0)
        return self

    # file-like, for Django's request stream
    def read(self, size: int = -1) -> bytes:
        return self.file.read(size)

    def readinto(self, buffer) -> int:
        return self.file.readinto(buffer)

    def readline(self, size: int = -1) -> bytes:
        return self.file.readline(size)

    @property
    def sha256(self) -> str:
        self._hashed()
        return self.digest.hexdigest()

    def fill_from(self, stream, size: int) -> None:
        """Copy exactly `size` bytes (or fewer, if the stream ends) from `stream`."""
        remaining = size
        while remaining > 0:
            chunk = stream.read(min(STREAM_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            self.append(chunk)

    def adopt(self, path: str, mode: int | None) -> None:
        """Rename the spooled file to `path` (atomically replacing what is there)."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if mode is not None:
            os.chmod(self.path, mode)
        os.replace(self.path, path)
        self._finalizer.detach()
        self.close()

    def close(self) -> None:
        self._hasher.shutdown(wait=False, cancel_futures=True)
        self.file.close()
        self._finalizer()


def storage_error(error: Exception, key: str) -> Exception:
    """The DomainError for a failed write: 507 when storage is full, 503 otherwise."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        logger.error("artifact storage is full, could not store %s: %s", key, error)
        return StorageFull(
            "artifact storage is full (no space left on the device): nothing was stored"
        )
    logger.error("artifact storage could not store %s", key, exc_info=error)
    return StorageUnavailable(f"artifact storage failed: {error}")


def store_verified_body(
    key: str, body, size: int, sha256: str = "", trailing: bool = False
) -> tuple[str, str]:
    """Store a raw request body of `size` bytes at `key` only if it is whole and verified.

    `sha256` is the digest declared beforehand, if any. With `trailing` the body ends with
    the SHA-256 of the bytes before it (TRAILING_SHA256), which they must match as well: a
    client hashes what it sends as it sends it, instead of reading the file twice.

    Local storage: the body is (or is first spooled to) a file under the storage root and
    renamed into place once verified, so the bytes are written to disk once. Remote storage:
    the body streams into a fresh key while hashed, which is deleted if it does not match.
    Returns (the key used, the bytes' sha256); raises InvalidInput on a mismatch,
    StorageFull/Unavailable on a failed write. Nothing is left behind on any failure.
    """
    content_size = size if trailing else None
    folder = incoming_dir()
    if folder is None:
        return _store_remote(key, body, size, sha256, trailing)
    spool = body if isinstance(body, SpooledBody) and body.folder == folder else None
    try:
        if spool is None or spool.content_size != content_size:
            spool = SpooledBody(folder, content_size)
            spool.fill_from(body, size + (DIGEST_BYTES if trailing else 0))
        trailer = bytes(spool.trailer) if trailing else None
        _verify(spool.error, spool.size, spool.sha256, size, sha256, trailer, key)
        storage = artifact_storage()
        spool.adopt(storage.path(key), storage.file_permissions_mode)
        return key, spool.sha256
    except OSError as error:
        raise storage_error(error, key) from error
    finally:
        if spool is not None:
            spool.close()


def _verify(error, received: int, digest: str, size: int, declared: str, trailer, key: str):
    if error is not None:
        raise storage_error(error, key) from error
    if received != size:
        raise InvalidInput(f"received {received} bytes, declared {size}: nothing was stored")
    if trailer is not None and len(trailer) != DIGEST_BYTES:
        raise InvalidInput("the body ended before its trailing sha256: nothing was stored")
    if trailer is not None and digest != trailer.hex():
        raise InvalidInput("sha256 of the received bytes differs from the one sent after them")
    if declared and digest != declared:
        raise InvalidInput("sha256 of the received bytes differs from the declared one")


class _HashingReader(io.RawIOBase):
    """A read-only, unseekable view of a stream that hashes and counts what is read, up to
    `size` (backends such as S3 stream it in parts without holding it whole)."""

    def __init__(self, stream, size: int):
        super().__init__()
        self.stream, self.remaining = stream, size
        self.digest, self.size = hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, amount: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        amount = self.remaining if amount is None or amount < 0 else min(amount, self.remaining)
        data = self.stream.read(amount)
        self.remaining -= len(data)
        self.size += len(data)
        self.digest.update(data)
        return data


def _store_remote(key: str, body, size: int, sha256: str, trailing: bool) -> tuple[str, str]:
    # A fresh key per upload: unverified bytes never replace a verified object.
    head, _, name = key.rpartition("/")
    fresh = f"{head}/{uuid.uuid4().hex[:12]}-{name}"
    reader = _HashingReader(body, size)
    saved = save_bytes(fresh, File(reader, name=name))
    digest = reader.digest.hexdigest()
    try:
        trailer = _read_exactly(body, DIGEST_BYTES) if trailing else None
        _verify(None, reader.size, digest, size, sha256, trailer, key)
    except Exception:
        delete_key(saved)
        raise
    return saved, digest


def _read_exactly(stream, size: int) -> bytes:
    """Up to `size` bytes: fewer only where the stream ends."""
    data = b""
    while len(data) < size and (chunk := stream.read(size - len(data))):
        data += chunk
    return data


def sweep_incoming(older_than: float = 3600.0) -> int:
    """Remove spooled bodies left by a server that died mid-upload; returns how many."""
    folder = incoming_dir()
    if folder is None or not folder.is_dir():
        return 0
    removed = 0
    cutoff = time.time() - older_than
    for path in folder.glob("body-*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
