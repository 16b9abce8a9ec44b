"""Bad inputs against a real server process: traversal names (R34), oversized uploads (R35),
malicious pickles (R36) and URLs the server must never fetch (R37)."""

import hashlib
import http.server
import io
import os
import pickle
import socket
import textwrap
import threading
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.security.conftest import ARTIFACT_LIMIT
from tests.support import run_script

pytestmark = pytest.mark.e2e

TRAVERSAL_NAMES = [
    "../../x",
    "/etc/passwd",
    "..%2f..%2fx",
    "a/../../b",
    "C:\\x",
    "C:\\..\\..\\windows\\win.ini",
    "nul\x00byte",
    "\uff0e\uff0e/\uff0e\uff0e/fullwidth",
    "....//....//x",
    "..",
    ".",
    "",
]


def _api(live, who="alice") -> requests.Session:
    return live.api(live.extra[who])


def _running_task(live, name: str, who="alice") -> str:
    response = _api(live, who).post(
        f"{live.url}/api/v1/tasks/",
        json={"project_name": f"{who}/live", "name": name, "start_running": True},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _declare(live, task_id, name, filename, data: bytes, kind="file", **extra):
    return _api(live).post(
        f"{live.url}/api/v1/tasks/{task_id}/artifacts/",
        json={
            "name": name,
            "kind": kind,
            "filename": filename,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            **extra,
        },
    )


def _upload(live, artifact_id, data: bytes, filename="f"):
    return _api(live).put(
        f"{live.url}/api/v1/artifacts/{artifact_id}/upload/", files={"file": (filename, data)}
    )


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


# ---------------------------------------------------------------- R34 path traversal


def test_traversal_names_stay_under_the_storage_root_and_download_intact(live, tmp_path):
    root = (live.data_dir / "artifacts").resolve()
    outside_before = _files_under(live.data_dir.parent) - _files_under(root)
    task_id = _running_task(live, "traversal")
    for index, evil in enumerate(TRAVERSAL_NAMES):
        data = f"payload {index} {evil!r}".encode()
        declared = _declare(live, task_id, evil or f"empty{index}", evil, data)
        if declared.status_code == 400:  # refused with a message is fine, a 500 is not
            assert declared.json()["detail"], evil
            continue
        assert declared.status_code == 201, (evil, declared.text)
        artifact = declared.json()
        assert "/" not in artifact["filename"] and "\\" not in artifact["filename"]
        assert not artifact["filename"].startswith(".")
        uploaded = _upload(live, artifact["id"], data, filename=artifact["filename"])
        assert uploaded.status_code == 200, (evil, uploaded.text)
        # downloads by id and through the stored URL return the exact bytes
        by_id = _api(live).get(f"{live.url}/api/v1/artifacts/{artifact['id']}/download/")
        assert by_id.content == data, evil
        by_url = _api(live).get(uploaded.json()["url"])
        assert by_url.status_code == 200 and by_url.content == data, evil
    # every stored byte is below the root; nothing appeared anywhere else
    for path in _files_under(root):
        assert root in path.resolve().parents, path
    outside_after = _files_under(live.data_dir.parent) - _files_under(root)
    assert {
        p
        for p in outside_after - outside_before
        if "server.log" not in p.name and "db.sqlite3" not in p.name
    } == set()
    # the /files/ URL is looked up by id: a crafted filename part does not reach the disk
    first = _api(live).get(f"{live.url}/api/v1/tasks/{task_id}/artifacts/").json()[0]
    for tail in ("../../../../etc/passwd", "..%2f..%2fdb.sqlite3", "%00"):
        response = _api(live).get(f"{live.url}/files/{first['id']}/{tail}")
        assert response.status_code in (200, 404), tail
        assert b"root:" not in response.content
    assert _api(live).get(f"{live.url}/files/..%2f..%2fdb.sqlite3/x").status_code == 404


def test_the_sdk_refuses_zip_members_that_leave_the_target(tmp_path):
    from pipelines.serialization import extract_zip

    for member in ("../escape.txt", "/abs/escape.txt", "a/../../escape.txt"):
        archive = tmp_path / "evil.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr(member, "owned")
        with pytest.raises(Exception):  # noqa: B017 - any refusal; what matters is below
            extract_zip(archive, tmp_path / "out" / "target")
        assert not list(tmp_path.rglob("escape.txt")), member


# ---------------------------------------------------------------- R35 oversized uploads


def test_a_declared_size_over_the_limit_is_413_before_any_byte(live):
    task_id = _running_task(live, "too big")
    response = _api(live).post(
        f"{live.url}/api/v1/tasks/{task_id}/artifacts/",
        json={
            "name": "big",
            "kind": "file",
            "filename": "big.bin",
            "size": ARTIFACT_LIMIT + 1,
            "sha256": "0" * 64,
        },
    )
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert _api(live).get(f"{live.url}/api/v1/tasks/{task_id}/artifacts/").json() == []


def _raw_request(live, head: str, body_chunks, read_timeout=10.0) -> bytes:
    """Send a request by hand (a lying Content-Length needs that); returns the response."""
    with socket.create_connection(("127.0.0.1", live.port), timeout=read_timeout) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close (or reset) early: that is the point
        received = b""
        try:
            while data := sock.recv(65536):
                received += data
        except OSError:
            pass
    return received


def _multipart(data: bytes, boundary="XbOuNdArY") -> tuple[bytes, bytes, str]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head, data + f"\r\n--{boundary}--\r\n".encode(), boundary


@pytest.mark.parametrize("lie", ["honest", "understated", "overstated", "chunked"])
def test_an_upload_past_the_limit_is_refused_and_nothing_is_stored(live, lie):
    root = live.data_dir / "artifacts"
    tmp_dir = Path(live.env["TMPDIR"])
    task_id = _running_task(live, f"upload {lie}")
    small = b"0123456789"
    artifact = _declare(live, task_id, "a", "a.bin", small).json()
    head, tail, boundary = _multipart(b"x" * (2 * ARTIFACT_LIMIT))
    body_len = len(head) + len(tail)
    declared = {
        "honest": body_len,
        "understated": len(head) + 100,
        "overstated": body_len * 50,
        "chunked": None,
    }[lie]
    length = (
        "Transfer-Encoding: chunked\r\n" if declared is None else f"Content-Length: {declared}\r\n"
    )
    request_head = (
        f"PUT /api/v1/artifacts/{artifact['id']}/upload/ HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{live.port}\r\nAuthorization: Bearer {live.extra['alice']}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n{length}"
        "Connection: close\r\n\r\n"
    )
    payload = head + tail
    if declared is None:
        chunks = [
            f"{len(payload[i : i + 8192]):x}\r\n".encode() + payload[i : i + 8192] + b"\r\n"
            for i in range(0, len(payload), 8192)
        ] + [b"0\r\n\r\n"]
    else:
        chunks = [payload[i : i + 8192] for i in range(0, len(payload), 8192)]
    response = _raw_request(live, request_head, chunks)
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else None
    if lie == "overstated" and not response:
        # waitress answers 413 on the headers alone and closes; the body still in flight
        # can make the kernel reset the connection before the answer is read
        status = 413
    assert status in (400, 413), (lie, response[:300])
    if lie in ("honest", "chunked"):
        assert status == 413, (lie, response[:300])
    # nothing stored, still pending, no temporary file left behind, server healthy
    state = _api(live).get(f"{live.url}/api/v1/artifacts/{artifact['id']}/").json()["state"]
    assert state == "pending"
    assert not [p for p in _files_under(root) if artifact["id"] in str(p)]
    assert not list(tmp_dir.iterdir()), list(tmp_dir.iterdir())
    assert requests.get(f"{live.url}/healthz", timeout=5).ok


def test_too_many_files_in_one_body_is_400(live):
    task_id = _running_task(live, "many files")
    artifact = _declare(live, task_id, "m", "m.bin", b"x").json()
    files = [(f"f{i}", (f"f{i}.bin", b"x")) for i in range(150)]
    response = _api(live).put(f"{live.url}/api/v1/artifacts/{artifact['id']}/upload/", files=files)
    assert response.status_code == 400, response.text
    assert requests.get(f"{live.url}/healthz", timeout=5).ok


# ---------------------------------------------------------------- R36 pickles


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_never_unpickled_by_the_server_or_by_default_sdk(live, tmp_path):
    marker = tmp_path / "owned"
    evil = pickle.dumps(_Evil(marker))
    task_id = _running_task(live, "pickles")
    artifact = _declare(live, task_id, "evil", "evil.pkl", evil, kind="pickle").json()
    assert _upload(live, artifact["id"], evil).status_code == 200
    # a pickle disguised as numpy: an .npz holding an object array
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, array=np.array([_Evil(marker)], dtype=object))
    npz = buffer.getvalue()
    disguised = _declare(live, task_id, "disguised", "d.npz", npz, kind="numpy").json()
    assert _upload(live, disguised["id"], npz).status_code == 200
    # every server read path: detail, lists, downloads, the task page and its tabs
    api = _api(live)
    for url in (
        f"/api/v1/artifacts/{artifact['id']}/",
        f"/api/v1/artifacts/{artifact['id']}/download/",
        f"/api/v1/tasks/{task_id}/artifacts/",
        f"/api/v1/tasks/{task_id}/",
        f"/files/{artifact['id']}/evil.pkl",
        f"/files/{disguised['id']}/d.npz",
    ):
        assert api.get(live.url + url).status_code == 200, url
    browser = requests.Session()
    browser.get(f"{live.url}/login/")
    browser.post(
        f"{live.url}/login/",
        data={
            "username": "alice",
            "password": "pw-alice",
            "csrfmiddlewaretoken": browser.cookies["csrftoken"],
        },
        headers={"Referer": f"{live.url}/login/"},
    )
    for tab in ("", "artifacts/", "info/"):
        assert browser.get(f"{live.url}/tasks/{task_id}/{tab}").status_code == 200, tab
    assert "evil.pkl" in browser.get(f"{live.url}/tasks/{task_id}/artifacts/").text
    assert not marker.exists()
    # the SDK with defaults refuses, naming the opt-in; numpy refuses the object array
    script = tmp_path / "read.py"
    script.write_text(
        textwrap.dedent(f"""
        from pipelines import Task
        task = Task.get_task(task_id={task_id!r})
        for name in ("evil", "disguised"):
            try:
                task.artifacts[name].get()
            except Exception as error:
                print(name, "REFUSED", type(error).__name__, error)
            else:
                print(name, "LOADED")
    """)
    )
    env = live.sdk_env(PIPELINES_API_KEY=live.extra["alice"])
    env.pop("PIPELINES_ALLOW_PICKLE", None)
    result = run_script(script, env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "evil REFUSED PickleNotAllowedError" in result.stdout
    assert "allow_pickle=True" in result.stdout and "PIPELINES_ALLOW_PICKLE=1" in result.stdout
    assert "disguised REFUSED" in result.stdout and "LOADED" not in result.stdout
    assert not marker.exists()


# ---------------------------------------------------------------- R37 SSRF


class _Canary(http.server.BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"canary")

    do_POST = do_HEAD = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture
def canary():
    _Canary.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Canary)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Canary.hits
    server.shutdown()
    server.server_close()


def test_the_server_never_fetches_a_url_it_is_given(live, canary):
    port, hits = canary
    urls = [
        f"http://127.0.0.1:{port}/artifact",
        f"http://localhost:{port}/artifact",
        f"http://2130706433:{port}/decimal",
        f"http://[::ffff:127.0.0.1]:{port}/mapped",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{port}/_x",
        f"s3://bucket/key?endpoint=http://127.0.0.1:{port}",
    ]
    api = _api(live)
    base = api.post(
        f"{live.url}/api/v1/tasks/",
        json={
            "project_name": "alice/ssrf",
            "name": "step",
            "script": {
                "entry_point": "s.py",
                "code": "print(1)",
                "repository": urls[0],
                "requirements": [f"pkg @ {urls[1]}"],
            },
            "hyperparameters": {"General": {f"u{i}": url for i, url in enumerate(urls)}},
            "configuration": {"remote": urls[0]},
        },
    ).json()
    producer = _running_task(live, "producer")
    data = b"bytes"
    declared = _declare(
        live,
        producer,
        "data",
        urls[0],
        data,
        metadata={"source": urls[0], "mirror": urls[4]},
        preview=urls[1],
    ).json()
    assert _upload(live, declared["id"], data).status_code == 200
    api.put(f"{live.url}/api/v1/tasks/{producer}/runtime/", json={"values": {"link": urls[0]}})
    # a pipeline whose parameters and overrides are those URLs, driven on the server
    controller = api.post(
        f"{live.url}/api/v1/tasks/",
        json={"project_name": "alice/ssrf", "name": "ctl", "type": "controller"},
    ).json()
    run = api.post(
        f"{live.url}/api/v1/pipelines/",
        json={
            "controller": controller["id"],
            "parameters": {"url": urls[0], "meta": urls[4]},
            "steps": [
                {
                    "name": "a",
                    "base_task_id": base["id"],
                    "parameter_override": {
                        "General/src": "${pipeline.url}",
                        "General/other": urls[2],
                    },
                },
                {
                    "name": "b",
                    "base_task_id": base["id"],
                    "parents": ["a"],
                    "parameter_override": {"General/prev": "${a.id}"},
                },
            ],
        },
    )
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    assert api.post(f"{live.url}/api/v1/pipelines/{run_id}/advance/").status_code == 200
    nodes = api.get(f"{live.url}/api/v1/pipelines/{run_id}/").json()["nodes"]
    first = next(n for n in nodes if n["name"] == "a")
    assert first["task"], nodes
    # the clone holds the URL verbatim: stored, never fetched
    clone = api.get(f"{live.url}/api/v1/tasks/{first['task']}/").json()
    assert clone["hyperparameters"]["General"]["src"]["value"] == urls[0]
    assert clone["script"]["repository"] == urls[0]
    artifact = api.get(f"{live.url}/api/v1/artifacts/{declared['id']}/").json()
    assert artifact["metadata"] == {"source": urls[0], "mirror": urls[4]}
    assert urlsplit(artifact["url"]).port == live.port  # the server's own URL
    # every page that shows them
    for url in (
        f"/api/v1/tasks/{base['id']}/",
        f"/api/v1/tasks/{producer}/artifacts/",
        f"/api/v1/artifacts/{declared['id']}/download/",
        f"/api/v1/pipelines/{run_id}/",
    ):
        assert api.get(live.url + url).status_code == 200, url
    assert hits == [], hits


def test_no_server_module_can_fetch_urls_or_load_pickles():
    """Static proof for R36/R37: the server's code has no unpickler and no HTTP client.

    Artifact storage backends (django-storages) talk to their configured bucket only.
    """
    import ast

    forbidden_modules = {
        "pickle",
        "cPickle",
        "dill",
        "cloudpickle",
        "joblib",
        "shelve",
        "marshal",
        "requests",
        "httpx",
        "urllib3",
        "aiohttp",
        "pycurl",
        "http.client",
        "urllib.request",
        "ftplib",
        "smtplib",
        "telnetlib",
    }
    forbidden_calls = {"read_pickle", "urlopen", "urlretrieve", "load_npz"}
    offenders = []
    for path in (Path(__file__).resolve().parents[2] / "webapp").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            if any(n in forbidden_modules or n.split(".")[0] in forbidden_modules for n in names):
                offenders.append(f"{path}:{node.lineno} imports {names}")
            if isinstance(node, ast.Attribute) and node.attr in forbidden_calls:
                offenders.append(f"{path}:{node.lineno} calls {node.attr}")
            if (
                isinstance(node, ast.keyword)
                and node.arg == "allow_pickle"
                and not (isinstance(node.value, ast.Constant) and node.value.value is False)
            ):
                offenders.append(f"{path}:{node.lineno} allow_pickle")
    assert offenders == []
    # and Celery accepts JSON only, so a forged pickled message is discarded
    from django.conf import settings

    assert settings.CELERY_ACCEPT_CONTENT == ["json"]
    assert settings.CELERY_TASK_SERIALIZER == "json"
