"""The SDK's only HTTP code: JSON calls, streamed uploads and downloads, retries."""

import hashlib
import http.client
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3

from .config import ClientConfig, load_config

RETRY_STATUSES = {502, 503, 504}
# Downloads read 1 MiB at a time into reused buffers.
CHUNK = 1 << 20
# Raw uploads send from two reused buffers, so a larger block only saves calls.
UPLOAD_CHUNK = 4 << 20
DIGEST_BYTES = 32  # a raw upload's trailing SHA-256
# What a body read raises when the connection breaks or the body ends early (a full disk
# is an OSError too, and is not one of these).
CUT_OFF = (ConnectionError, TimeoutError, http.client.HTTPException, urllib3.exceptions.HTTPError)


class ApiError(RuntimeError):
    """The server refused a call; `status` and `code` say why."""

    def __init__(self, status: int, detail: str, code: str = "", body=None):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
        self.code = code
        self.body = body


class Client:
    """A small REST client bound to one server and one key."""

    def __init__(self, config: ClientConfig, timeout: float = 30.0, retry_for: float = 30.0):
        self.config = config
        self.base = config.api_url.rstrip("/")
        self.api = f"{self.base}/api/v1"
        self.timeout = timeout
        self.retry_for = retry_for
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.config.api_key}"
            session.headers["User-Agent"] = "pipelines-sdk"
            self._local.session = session
        return session

    def owns_url(self, url: str) -> bool:
        """True when `url` points at this server, so our credentials may go with it."""
        a, b = urlsplit(url), urlsplit(self.base)
        return (a.scheme, a.netloc) == (b.scheme, b.netloc)

    def request(self, method: str, path: str, *, json_body=None, params=None, **kwargs):
        url = path if path.startswith("http") else f"{self.api}/{path.lstrip('/')}"
        data = None
        headers = kwargs.pop("headers", {})
        if json_body is not None:
            data = json.dumps(json_body, allow_nan=False)
            headers["Content-Type"] = "application/json"
        if method == "POST":
            # One key for this call and all its retries: the server replays the answer to a
            # retry whose first attempt it already applied (the answer was lost).
            headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
        deadline = time.monotonic() + self.retry_for
        delay = 0.1
        while True:
            try:
                response = self.session.request(
                    method,
                    url,
                    data=data,
                    params=params,
                    headers=headers,
                    timeout=kwargs.pop("timeout", self.timeout),
                    **kwargs,
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                if time.monotonic() + delay > deadline:
                    raise ApiError(0, f"cannot reach {self.base}: {error}") from error
            else:
                if response.status_code not in RETRY_STATUSES or time.monotonic() > deadline:
                    return self._result(response)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    @staticmethod
    def _result(response: requests.Response):
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"detail": response.text[:500]}
            detail = body.get("detail", str(body)) if isinstance(body, dict) else str(body)
            code = body.get("error", "") if isinstance(body, dict) else ""
            raise ApiError(response.status_code, detail, code, body)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path, **params):
        return self.request("GET", path, params=params or None)

    def post(self, path, body=None):
        return self.request("POST", path, json_body=body if body is not None else {})

    def put(self, path, body):
        return self.request("PUT", path, json_body=body)

    def patch(self, path, body):
        return self.request("PATCH", path, json_body=body)

    def delete(self, path):
        return self.request("DELETE", path)

    def upload(
        self,
        path: str,
        file_path: Path,
        field: str = "file",
        filename: str = "",
        method: str = "PUT",
        fields: dict | None = None,
        content_type: str = "application/octet-stream",
    ):
        """Multipart upload streamed from disk with a known length (never read whole)."""
        boundary = uuid.uuid4().hex
        name = (filename or file_path.name).replace('"', "_")
        preamble = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
            for key, value in (fields or {}).items()
        )
        head = (
            f'{preamble}--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{name}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        size = file_path.stat().st_size
        return self._send_body(
            method,
            path,
            lambda: _MultipartStream(head, file_path, tail, size),
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )

    def put_file(self, path: str, file_path: Path, headers: dict | None = None):
        """PUT a file as the raw request body (application/octet-stream, Content-Length),
        streamed from disk in large blocks, never read whole; retried like upload().

        The body ends with the SHA-256 of the file's bytes (`X-Content-SHA256: trailing`),
        hashed on another core as they are sent, and the server stores them only if it
        matches; a file that changes while it is sent fails the upload (FileChangedError).
        """
        size = file_path.stat().st_size
        return self._send_body(
            "PUT",
            path,
            lambda: _HashedFileBody(file_path, size),
            {
                "Content-Type": "application/octet-stream",
                "X-Content-SHA256": "trailing",
                **(headers or {}),
            },
        )

    def _send_body(self, method: str, path: str, make_body, headers: dict):
        """Send a file body, fresh from `make_body()` on each attempt, retrying while the
        server is unreachable or answers 502-504 (within `retry_for`)."""
        url = f"{self.api}/{path.lstrip('/')}"
        deadline = time.monotonic() + self.retry_for
        while True:
            try:
                response = self.session.request(
                    method,
                    url,
                    data=make_body(),
                    headers=headers,
                    timeout=max(self.timeout, 600),
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                if time.monotonic() > deadline:
                    raise ApiError(0, f"upload to {self.base} failed: {error}") from error
                time.sleep(0.5)
                continue
            if response.status_code in RETRY_STATUSES and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            return self._result(response)

    def download(self, url: str, dest: Path, expected_sha256: str | None = None) -> Path:
        """Stream `url` into `dest` (atomically). Credentials go only to our own server.

        With `expected_sha256` the bytes are hashed as they arrive (no second pass over the
        file) and a mismatch leaves nothing at `dest` (ApiError code "sha256_mismatch").
        """
        session = self.session if self.owns_url(url) else requests.Session()
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with session.get(url, stream=True, timeout=max(self.timeout, 600)) as response:
                if response.status_code >= 400:
                    self._result(response)
                with open(tmp, "wb", buffering=0) as handle:
                    try:
                        received = _copy_body(response, handle, hashed=bool(expected_sha256))
                    except CUT_OFF as error:
                        raise ApiError(0, f"download of {url} was cut off: {error!r}") from error
            if expected_sha256 and received != expected_sha256:
                raise ApiError(
                    0, f"downloaded bytes of {url} do not match their sha256", "sha256_mismatch"
                )
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(dest)
        return dest

    def head_sha256(self, url: str) -> str | None:
        """The content hash our server declares for a file URL, without its bytes."""
        if not self.owns_url(url):
            return None
        with self.session.get(url, stream=True, timeout=self.timeout) as response:
            if response.status_code >= 400:
                self._result(response)
            return response.headers.get("X-Content-SHA256")


def _copy_body(response: requests.Response, handle, hashed: bool) -> str | None:
    """Write a response body to `handle`; its sha256 hex digest when `hashed`. A body
    shorter than its Content-Length raises http.client.IncompleteRead.

    Two buffers alternate: one block is hashed (_BackgroundSha256) while the next is read.
    """
    readinto = _body_readinto(response)
    buffers = [bytearray(CHUNK), bytearray(CHUNK)]
    received = 0
    with _BackgroundSha256() as digest:
        while count := readinto(buffers[0]):
            received += count
            block = memoryview(buffers[0])[:count]
            if hashed:
                digest.update(block)
            while block:
                block = block[handle.write(block) :]
            buffers.reverse()
        declared = response.headers.get("Content-Length")
        # http.client's readinto() reports a connection closed early as a plain end of body
        if declared is not None and _unencoded(response) and received < int(declared):
            raise http.client.IncompleteRead(b"", int(declared) - received)
        return digest.digest().hex() if hashed else None


class _BackgroundSha256:
    """A SHA-256 of blocks handed over in order, each hashed on another thread (hashlib lets
    go of the GIL) while the caller reads, writes or sends the next. One block is in flight
    at a time, so a caller alternating two buffers never refills the one being hashed."""

    def __init__(self):
        self._sha256 = hashlib.sha256()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sha256")
        self._pending = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._pool.shutdown(cancel_futures=True)

    def update(self, block) -> None:
        self._wait()
        self._pending = self._pool.submit(self._sha256.update, block)

    def digest(self) -> bytes:
        self._wait()
        return self._sha256.digest()

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None


def _body_readinto(response: requests.Response):
    """readinto() for a response body, straight from the socket when it is not encoded.

    requests and urllib3 return every read as a fresh bytes object, which for large blocks
    is fresh memory the kernel faults in page by page: most of a large download's CPU.
    """
    reader = getattr(response.raw, "_fp", None)  # urllib3 wraps an http.client response
    if _unencoded(response) and hasattr(reader, "readinto"):
        return reader.readinto
    return response.raw.readinto


def _unencoded(response: requests.Response) -> bool:
    return response.headers.get("Content-Encoding", "identity").lower() == "identity"


class _MultipartStream:
    """A read()-able body of known length: head, the file's bytes, tail.

    requests sends a sized file-like object with Content-Length, streaming it in blocks.
    """

    def __init__(self, head: bytes, path: Path, tail: bytes, size: int):
        self._parts = [head, None, tail]
        self._path = path
        self._length = len(head) + size + len(tail)
        self._handle = None
        self._index = 0

    def __len__(self) -> int:
        return self._length

    def read(self, amount: int = -1) -> bytes:
        amount = CHUNK if amount is None or amount < 0 else amount
        while self._index < 3:
            part = self._parts[self._index]
            if part is None:
                if self._handle is None:
                    self._handle = open(self._path, "rb")  # noqa: SIM115 - closed below
                data = self._handle.read(amount)
                if data:
                    return data
                self._handle.close()
            elif part:
                self._parts[self._index] = b""
                return part
            self._index += 1
        return b""


class FileChangedError(RuntimeError):
    """A file changed while it was being uploaded: what was sent is not the file."""


class _HashedFileBody:
    """A file, then the SHA-256 of what was sent of it, as an iterable request body of known
    length: requests sends it with a Content-Length, one large block per send, and can start
    it over on a retry.

    Two buffers alternate: a block is hashed (_BackgroundSha256) while it is sent and the
    next one is read.
    """

    def __init__(self, path: Path, size: int):
        self._path = path
        self._size = size

    def __len__(self) -> int:
        return self._size + DIGEST_BYTES

    def __iter__(self):
        buffers = [bytearray(UPLOAD_CHUNK), bytearray(UPLOAD_CHUNK)]
        remaining = self._size
        with open(self._path, "rb", buffering=0) as handle, _BackgroundSha256() as digest:
            before = _identity(os.fstat(handle.fileno()))
            while remaining > 0 and before[0] == self._size:
                count = handle.readinto(memoryview(buffers[0])[: min(remaining, UPLOAD_CHUNK)])
                if not count:
                    break
                remaining -= count
                block = memoryview(buffers[0])[:count]
                digest.update(block)
                yield block
                buffers.reverse()
            sha256 = digest.digest()
            if remaining or _identity(os.fstat(handle.fileno())) != before:
                # Cut the body short: the server then stores nothing.
                raise FileChangedError(f"{self._path} changed while it was being uploaded")
        yield sha256


def _identity(stat: os.stat_result) -> tuple:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


_default_client: Client | None = None
_client_lock = threading.Lock()


def get_client() -> Client:
    global _default_client
    with _client_lock:
        if _default_client is None:
            _default_client = Client(load_config())
        return _default_client


def set_client(client: Client | None) -> None:
    """Replace the process-wide client (tests, or `pipelines login` in the same process)."""
    global _default_client
    with _client_lock:
        _default_client = client
