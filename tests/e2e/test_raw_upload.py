"""Raw-body artifact uploads (PUT artifacts/{id}/content/) through a real server process."""

import hashlib
import json
import os
import socket
from urllib.parse import urlsplit

import pytest

from tests.support import start_server, wait_until

pytestmark = pytest.mark.e2e

_SECOND_USER = """
import json
from django.contrib.auth import get_user_model
from webapp.core import keys
user = get_user_model().objects.create_user("mallory", password="pw-mallory")
print(json.dumps({"mallory": keys.create_api_key(user)[1]}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("raw-upload")
    # Bodies waitress keeps for other requests go here, so a test can see none is left.
    (data_dir / "tmp").mkdir()
    process = start_server(data_dir, TMPDIR=str(data_dir / "tmp"))
    process.extra.update(json.loads(process.manage("shell", "-c", _SECOND_USER).splitlines()[-1]))
    yield process
    process.stop()
    process.drop_database()


def _running_task(server) -> str:
    response = server.api().post(
        f"{server.url}/api/v1/tasks/",
        json={"project_name": "raw", "name": "uploader", "start_running": True},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _declare(server, data: bytes, sha256: str | None = None) -> dict:
    """Declare an artifact for `data`: with its sha256, `sha256` instead, or none ("")."""
    response = server.api().post(
        f"{server.url}/api/v1/tasks/{_running_task(server)}/artifacts/",
        json={
            "name": "blob",
            "kind": "file",
            "filename": "blob.bin",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest() if sha256 is None else sha256,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def _put(server, artifact_id: str, data: bytes, key: str | None = None, trailer: bytes = b""):
    """PUT `data` as the raw body; with a `trailer`, sent after it as its trailing sha256."""
    session = server.api(key)
    if key == "":
        session.headers.pop("Authorization")
    headers = {"Content-Type": "application/octet-stream"}
    if trailer:
        headers["X-Content-SHA256"] = "trailing"
    return session.put(
        f"{server.url}/api/v1/artifacts/{artifact_id}/content/",
        data=data + trailer,
        headers=headers,
    )


def _stored(server, artifact_id: str) -> list:
    root = server.data_dir / "artifacts"
    return [p for p in root.rglob("*") if p.is_file() and artifact_id in str(p)]


def _spooled(server) -> list:
    """Request bodies still on disk: under the storage root, or waitress's own temp files."""
    incoming = server.data_dir / "artifacts" / ".incoming"
    spools = list(incoming.iterdir()) if incoming.is_dir() else []
    return spools + list((server.data_dir / "tmp").iterdir())


def _state(server, artifact_id: str) -> str:
    return server.api().get(f"{server.url}/api/v1/artifacts/{artifact_id}/").json()["state"]


def test_a_raw_upload_round_trips_byte_identical_and_leaves_no_spool(server):
    # given a declared artifact of several MB (several reads and writes on the way)
    data = os.urandom(9 * 1024 * 1024 + 123)
    declared = _declare(server, data)
    # when its bytes are PUT as the raw body
    response = _put(server, declared["id"], data)
    # then it is ready, and downloads (by id and by its URL) give back the exact bytes
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "ready"
    download = server.api().get(f"{server.url}/api/v1/artifacts/{declared['id']}/download/")
    assert download.status_code == 200
    assert download.headers["X-Content-SHA256"] == hashlib.sha256(data).hexdigest()
    assert download.content == data
    assert server.api().get(response.json()["url"]).content == data
    # the bytes were renamed into place: one stored file, nothing left in the spool
    (stored,) = _stored(server, declared["id"])
    assert stored.read_bytes() == data
    assert _spooled(server) == []
    # and a second upload of the same bytes replaces them in place
    assert _put(server, declared["id"], data).status_code == 200
    assert len(_stored(server, declared["id"])) == 1 and _spooled(server) == []


def test_the_sdk_uploads_through_the_raw_path(server, tmp_path):
    from pipelines.client import Client
    from pipelines.config import ClientConfig

    data = os.urandom(9 * 1024 * 1024 + 5)  # more than two of the SDK's 4 MiB blocks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    client = Client(ClientConfig(api_url=server.url, api_key=server.api_key))
    # the SDK sends the sha256 after the bytes: it checks them with or without a declared one
    for declared_sha256 in ("", None):
        declared = _declare(server, data, sha256=declared_sha256)
        answer = client.put_file(f"artifacts/{declared['id']}/content/", path)
        assert answer["state"] == "ready"
        assert answer["sha256"] == hashlib.sha256(data).hexdigest()
        (stored,) = _stored(server, declared["id"])
        assert stored.read_bytes() == data
    assert _spooled(server) == []
    # the download is hashed as it arrives and checked against the recorded sha256
    copy = client.download(answer["url"], tmp_path / "copy.bin", expected_sha256=answer["sha256"])
    assert copy.read_bytes() == data
    # an empty file is just its sha256
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    declared = _declare(server, b"", sha256="")
    answer = client.put_file(f"artifacts/{declared['id']}/content/", empty)
    assert (answer["state"], answer["size"]) == ("ready", 0)
    assert answer["sha256"] == hashlib.sha256(b"").hexdigest()


def test_a_wrong_trailing_sha256_stays_pending_with_nothing_stored(server):
    data = os.urandom(3 * 1024 * 1024)
    declared = _declare(server, data, sha256="")
    response = _put(server, declared["id"], data, trailer=hashlib.sha256(b"other").digest())
    assert response.status_code == 400, response.text
    assert "sha256" in response.json()["detail"]
    assert _state(server, declared["id"]) == "pending"
    assert _stored(server, declared["id"]) == [] and _spooled(server) == []
    # the right one afterwards goes through, and the sha256 is recorded
    response = _put(server, declared["id"], data, trailer=hashlib.sha256(data).digest())
    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()


def test_without_a_declared_or_trailing_sha256_nothing_is_stored(server):
    data = os.urandom(64 * 1024)
    declared = _declare(server, data, sha256="")
    response = _put(server, declared["id"], data)
    assert response.status_code == 400, response.text
    assert "trailing" in response.json()["detail"]
    assert _state(server, declared["id"]) == "pending"
    assert _stored(server, declared["id"]) == [] and _spooled(server) == []


def test_a_wrong_sha256_stays_pending_with_nothing_stored(server):
    data = os.urandom(3 * 1024 * 1024)
    declared = _declare(server, data, sha256="0" * 64)
    response = _put(server, declared["id"], data)
    assert response.status_code == 400, response.text
    assert "sha256" in response.json()["detail"]
    assert _state(server, declared["id"]) == "pending"
    assert (
        server.api().get(f"{server.url}/api/v1/artifacts/{declared['id']}/download/").status_code
        == 409
    )
    assert _stored(server, declared["id"]) == []
    assert _spooled(server) == []


def test_a_body_cut_off_mid_way_stays_pending_with_nothing_stored(server):
    data = os.urandom(4 * 1024 * 1024)
    declared = _declare(server, data)
    # when a client sends half of the declared body and hangs up
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            (
                f"PUT /api/v1/artifacts/{declared['id']}/content/ HTTP/1.1\r\n"
                f"Host: {url.netloc}\r\nAuthorization: Bearer {server.api_key}\r\n"
                "Content-Type: application/octet-stream\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data[: len(data) // 2]
        )
        # the body goes to one file under the storage root while it arrives ...
        wait_until(lambda: len(_spooled(server)) == 1, timeout=10, message="body spooled")
        assert _spooled(server)[0].parent.name == ".incoming"
    # ... then the half-received body is dropped, nothing is stored and the artifact is pending
    wait_until(lambda: _spooled(server) == [], timeout=10, message="spool removed")
    assert _state(server, declared["id"]) == "pending"
    assert _stored(server, declared["id"]) == []
    # and the complete body still goes through afterwards
    assert _put(server, declared["id"], data).status_code == 200


def test_a_body_longer_or_shorter_than_declared_is_refused(server):
    data = os.urandom(64 * 1024)
    declared = _declare(server, data)
    too_long = _put(server, declared["id"], data + b"x")
    assert too_long.status_code == 413, too_long.text
    assert too_long.json()["error"] == "too_large"
    too_short = _put(server, declared["id"], data[:-1])
    assert too_short.status_code == 400, too_short.text
    assert _state(server, declared["id"]) == "pending"
    assert _stored(server, declared["id"]) == [] and _spooled(server) == []


def test_a_body_past_the_server_limit_is_413_before_it_is_sent(server):
    declared = _declare(server, b"small")
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        # only the headers go out: the answer must come without the body being sent
        sock.sendall(
            (
                f"PUT /api/v1/artifacts/{declared['id']}/content/ HTTP/1.1\r\n"
                f"Host: {url.netloc}\r\nAuthorization: Bearer {server.api_key}\r\n"
                "Content-Type: application/octet-stream\r\n"
                f"Content-Length: {64 * 1024**3}\r\n\r\n"
            ).encode()
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert _spooled(server) == []


def test_uploads_need_a_key_and_the_owner_of_the_task(server):
    data = b"secret bytes"
    declared = _declare(server, data)
    # no credentials, or a wrong key: 401
    assert _put(server, declared["id"], data, key="").status_code == 401
    assert _put(server, declared["id"], data, key="not-a-key").status_code == 401
    # another user's artifact is not even there for them
    assert _put(server, declared["id"], data, key=server.extra["mallory"]).status_code == 404
    assert _state(server, declared["id"]) == "pending"
    assert _stored(server, declared["id"]) == [] and _spooled(server) == []
