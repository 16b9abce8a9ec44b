"""Bad input at both doors (/api/v1/ and /clearml-api/) against a real server process: a
clear 4xx naming what is wrong, never a 500, never a stored row that breaks later reads
(R60-R66)."""

import json
import socket
from pathlib import Path

import pytest
import requests

from tests.security.conftest import start_live

pytestmark = pytest.mark.e2e

BODY_LIMIT = 8 * 1024 * 1024  # DATA_UPLOAD_MAX_MEMORY_SIZE of this server
# Larger: uploads keep their own limit, and waitress lets bodies up to it through, so a
# 150 MB JSON body reaches the body limit of webapp/bodylimit.py.
ARTIFACT_LIMIT = 256 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_live(
        tmp_path_factory,
        "bad-input",
        DATA_UPLOAD_MAX_MEMORY_SIZE=str(BODY_LIMIT),
        ARTIFACT_MAX_BYTES=str(ARTIFACT_LIMIT),
    )
    yield live
    live.stop()
    live.drop_database()


def _api(server, who="alice") -> requests.Session:
    return server.api(server.extra[who] if who != "admin" else server.api_key)


def _task(server, name: str, running: bool = False) -> str:
    response = _api(server).post(
        f"{server.url}/api/v1/tasks/",
        json={"project_name": "alice/bad-input", "name": name, "start_running": running},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _raw_json(server, method: str, path: str, text: str, who="alice") -> requests.Response:
    return _api(server, who).request(
        method,
        f"{server.url}{path}",
        data=text.encode(),
        headers={"Content-Type": "application/json"},
    )


def _clearml(server, endpoint: str, body=None, raw: str | None = None, who="alice"):
    data = raw.encode() if raw is not None else json.dumps(body or {}).encode()
    return requests.post(
        f"{server.url}/clearml-api/{endpoint}",
        data=data,
        headers={
            "Authorization": f"Bearer {server.extra[who]}",
            "Content-Type": "application/json",
        },
        timeout=30,
    )


def _meta(response) -> dict:
    return response.json()["meta"]


def _no_server_errors(server) -> None:
    log = server.log_path.read_text(errors="replace")
    for marker in ("Internal Server Error", "unexpected error in", "database error in"):
        assert marker not in log, log[log.find(marker) - 2000 :][:4000]


def _reads_still_work(server) -> None:
    for who in ("alice", "admin"):
        listing = _api(server, who).get(f"{server.url}/api/v1/tasks/?page_size=1000")
        assert listing.status_code == 200, listing.text[:500]
        # every text field is bounded, so a page of tasks stays small
        assert len(listing.content) < 4 * 1024 * 1024
        for task in listing.json()["results"][:50]:
            assert _api(server, who).get(f"{server.url}/api/v1/tasks/{task['id']}/").ok
    assert _clearml(server, "tasks.get_all", {}).status_code == 200


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _send_raw(server, head: str, chunks) -> bytes:
    """A request written by hand (a huge or chunked body); the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError as error:
            raise AssertionError(f"the server hung up before the body was sent: {error}") from None
        received = b""
        while data := sock.recv(65536):
            received += data
    return received


def _zeros(total: int, block: int = 1 << 20):
    sent = 0
    piece = b" " * block
    while sent < total:
        size = min(block, total - sent)
        yield piece[:size]
        sent += size


# ---------------------------------------------------------------- R60 body size


def test_json_bodies_past_the_limit_are_refused_unread_and_uploads_still_stream(server):
    tmp_dir = Path(server.env["TMPDIR"])
    rss_before = _rss_kib(server.process.pid)
    # 150 MB declared and sent: a comment that would have been stored whole
    huge = 150 * 1024 * 1024
    prefix = b'{"project_name": "alice/bad-input", "name": "huge", "comment": "'
    head = (
        f"POST /api/v1/tasks/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.extra['alice']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {huge}\r\nConnection: close\r\n\r\n"
    )
    answer = _send_raw(server, head, [prefix, *_zeros(huge - len(prefix))])
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"too_large"' in body, body[:300]
    # the bytes were counted, never kept: no spill file, no memory kept
    assert not list(tmp_dir.iterdir())
    assert _rss_kib(server.process.pid) - rss_before < 64 * 1024

    # a chunked body (no declared length) past the limit, on both doors
    for path in ("/api/v1/tasks/", "/clearml-api/tasks.create"):
        chunk = b" " * (1 << 20)
        chunks = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 10 + [b"0\r\n\r\n"]
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {server.extra['alice']}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n"
        )
        answer = _send_raw(server, head, chunks)
        assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:300])
    # an honest body past the limit at the ClearML door: the envelope says 413
    too_big = _clearml(server, "tasks.create", raw=" " * (BODY_LIMIT + 1))
    assert too_big.status_code == 413 and _meta(too_big)["result_code"] == 413
    # the form parsers of the REST door are held to it as well
    form = _api(server).post(f"{server.url}/api/v1/tasks/", data={"name": "x" * (BODY_LIMIT + 1)})
    assert form.status_code == 413, form.text[:300]

    # uploads are not JSON bodies: an artifact past the JSON limit still streams in
    task_id = _task(server, "uploads", running=True)
    data = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    import hashlib

    for mode in ("content", "upload"):
        declared = _api(server).post(
            f"{server.url}/api/v1/tasks/{task_id}/artifacts/",
            json={
                "name": f"big-{mode}",
                "kind": "file",
                "filename": "big.bin",
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            },
        )
        assert declared.status_code == 201, declared.text
        url = f"{server.url}/api/v1/artifacts/{declared.json()['id']}/{mode}/"
        if mode == "content":
            stored = _api(server).put(url, data=data)
        else:
            stored = _api(server).put(url, files={"file": ("big.bin", data)})
        assert stored.status_code == 200, stored.text[:300]
        assert stored.json()["state"] == "ready"
    names = [t["name"] for t in _api(server).get(f"{server.url}/api/v1/tasks/").json()["results"]]
    assert "huge" not in names
    _reads_still_work(server)
    _no_server_errors(server)


# ---------------------------------------------------------------- R61 text lengths


def _rest_cases(server):
    draft, running = _task(server, "lengths draft"), _task(server, "lengths running", True)
    long = "x" * 300
    return [
        (
            "POST",
            "/api/v1/tasks/",
            {"project_name": "p", "name": "t", "comment": "c" * 10_001},
            "comment",
        ),
        ("POST", "/api/v1/tasks/", {"project_name": "p", "name": "t", "tags": ["a"] * 101}, "tags"),
        ("POST", "/api/v1/tasks/", {"project_name": "p", "name": "t", "tags": [long]}, "tags"),
        ("POST", "/api/v1/tasks/", {"project_name": "p", "name": long}, "name"),
        ("POST", "/api/v1/tasks/", {"project_name": long, "name": "t"}, "project_name"),
        (
            "POST",
            "/api/v1/tasks/",
            {"project_name": "p", "name": "t", "script": {"code": "x" * (9 << 20)}},
            "request body",
        ),
        ("PATCH", f"/api/v1/tasks/{draft}/", {"comment": "c" * 10_001}, "comment"),
        ("PATCH", f"/api/v1/tasks/{draft}/", {"tags": [f"t{i}" for i in range(101)]}, "tags"),
        (
            "PUT",
            f"/api/v1/tasks/{draft}/hyperparameters/",
            {"values": {"G": {long: 1}}},
            "hyperparameters",
        ),
        (
            "PUT",
            f"/api/v1/tasks/{draft}/hyperparameters/",
            {"values": {long: {"a": 1}}},
            "hyperparameters",
        ),
        (
            "PUT",
            f"/api/v1/tasks/{draft}/hyperparameters/",
            {"values": {"G": {"a": "v" * 65_537}}},
            "hyperparameters",
        ),
        (
            "PUT",
            f"/api/v1/tasks/{draft}/hyperparameters/",
            {"values": {"G": {"a": {"value": 1, "type": long}}}},
            "hyperparameters",
        ),
        (
            "PUT",
            f"/api/v1/tasks/{draft}/hyperparameters/",
            {"values": {"G": {f"p{i}": i for i in range(10_001)}}},
            "hyperparameters",
        ),
        ("PUT", f"/api/v1/tasks/{draft}/configuration/", {"values": {long: "x"}}, "configuration"),
        (
            "PUT",
            f"/api/v1/tasks/{draft}/configuration/",
            {"values": {"c": "\x00"}},
            "configuration",
        ),
        ("PUT", f"/api/v1/tasks/{draft}/runtime/", {"values": {"r": "x" * (1 << 20)}}, "runtime"),
        ("POST", f"/api/v1/tasks/{running}/failed/", {"message": "m" * 20_001}, "message"),
        ("POST", f"/api/v1/tasks/{draft}/enqueue/", {"queue": "q" * 101}, "queue"),
        ("POST", f"/api/v1/tasks/{draft}/enqueue/", {"queue": "no/slashes"}, "queue"),
        ("POST", f"/api/v1/tasks/{draft}/clone/", {"name": long}, "name"),
        ("POST", f"/api/v1/tasks/{draft}/clone/", {"tags": ["a"] * 101}, "tags"),
        (
            "POST",
            f"/api/v1/tasks/{running}/artifacts/",
            {
                "name": "a",
                "kind": "file",
                "filename": "f",
                "size": 1,
                "metadata": {"m": "x" * (1 << 20)},
            },
            "metadata",
        ),
        (
            "POST",
            f"/api/v1/tasks/{running}/console/",
            {"lines": [{"stream": "stdout", "text": "x"}], "batch_id": long},
            "batch_id",
        ),
        ("POST", "/api/v1/workers/heartbeat/", {"name": long, "queues": ["default"]}, "name"),
        ("POST", "/api/v1/workers/heartbeat/", {"name": "w", "queues": ["q" * 101]}, "queues"),
        ("POST", "/api/v1/workers/unregister/", {"name": long}, "name"),
        ("POST", "/api/v1/projects/", {"name": long}, "name"),
        (
            "POST",
            "/api/v1/projects/",
            {"name": "p-desc", "description": "d" * 10_001},
            "description",
        ),
        ("POST", "/api/v1/teams/", {"name": "t" * 101}, "name"),
        ("POST", "/api/v1/keys/", {"name": "k" * 101}, "name"),
        ("GET", f"/api/v1/tasks/?search={long}", None, "search"),
        ("GET", "/api/v1/tasks/?name=%00", None, "name"),
    ]


def test_strings_past_their_limits_are_a_400_naming_the_field_at_the_rest_door(server):
    for method, path, body, field in _rest_cases(server):
        # staff for the worker and team verbs; alice for the rest
        who = "admin" if "/workers/" in path or "/teams/" in path else "alice"
        response = _api(server, who).request(method, f"{server.url}{path}", json=body)
        assert response.status_code in (400, 413), (path, field, response.text[:300])
        assert field in response.text, (path, field, response.text[:300])
    _reads_still_work(server)
    _no_server_errors(server)


def test_strings_past_their_limits_are_a_400_naming_the_field_at_the_clearml_door(server):
    task_id = _clearml(server, "tasks.create", {"name": "clearml lengths", "type": "training"})
    assert _meta(task_id)["result_code"] == 200, task_id.text
    task_id = task_id.json()["data"]["id"]
    long = "x" * 300
    cases = [
        ("tasks.create", {"name": "task", "comment": "c" * 10_001}, "comment"),
        ("tasks.create", {"name": long}, "name"),
        ("tasks.create", {"name": "task", "tags": ["t"] * 101}, "tags"),
        ("tasks.create", {"name": "task", "system_tags": [long]}, "system_tags"),
        ("tasks.create", {"name": "task", "runtime": {"r": "x" * (1 << 20)}}, "runtime"),
        ("tasks.edit", {"task": task_id, "comment": "c" * 10_001}, "comment"),
        ("tasks.update", {"task": task_id, "name": long}, "name"),
        (
            "tasks.edit_hyper_params",
            {
                "task": task_id,
                "hyperparams": [{"section": "G", "name": "a", "value": "v" * 65_537}],
            },
            "hyperparameters",
        ),
        (
            "tasks.edit_hyper_params",
            {"task": task_id, "hyperparams": [{"section": "G", "name": long, "value": "v"}]},
            "hyperparameters",
        ),
        (
            "tasks.edit_configuration",
            {"task": task_id, "configuration": [{"name": long, "value": "v"}]},
            "configuration",
        ),
        ("tasks.clone", {"task": task_id, "new_task_comment": "c" * 10_001}, "comment"),
        ("tasks.clone", {"task": task_id, "new_task_name": long}, "name"),
        ("queues.create", {"name": "q" * 101}, "queue"),
        ("tasks.enqueue", {"task": task_id, "queue_name": "q" * 101}, "queue"),
        (
            "tasks.failed",
            {"task": task_id, "force": True, "status_message": "m" * 20_001},
            "message",
        ),
        ("projects.create", {"name": long}, "project"),
    ]
    for endpoint, body, field in cases:
        response = _clearml(server, endpoint, body)
        meta = _meta(response)
        assert meta["result_code"] in (400, 413), (endpoint, field, meta)
        assert field in meta["result_msg"], (endpoint, field, meta)
    _reads_still_work(server)
    _no_server_errors(server)


# ---------------------------------------------------------------- R62 nesting depth


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_nested_past_32_levels_is_a_400_at_parse_time_on_both_doors(server):
    running = _task(server, "depth", running=True)
    for depth in (33, 1_000, 100_000):
        bodies = [
            ("POST", "/api/v1/tasks/", _nested(depth)),
            (
                "PUT",
                f"/api/v1/tasks/{running}/runtime/",
                f'{{"values": {{"a": {_nested(depth)}}}}}',
            ),
            (
                "POST",
                f"/api/v1/tasks/{running}/events/",
                '{"events": [{"type": "plot", "title": "t", "series": "s", '
                f'"figure": {{"data": {_nested(depth)}}}}}]}}',
            ),
            ("POST", "/api/v1/pipelines/", f'{{"controller": "x", "steps": {_nested(depth)}}}'),
            ("POST", "/api/v1/workers/heartbeat/", f'{{"name": "w", "queues": {_nested(depth)}}}'),
        ]
        for method, path, text in bodies:
            who = "admin" if "/workers/" in path else "alice"
            response = _raw_json(server, method, path, text, who)
            assert response.status_code == 400, (depth, path, response.text[:300])
            assert "nested" in response.json()["detail"], (depth, path, response.text[:300])
        for endpoint in ("tasks.create", "tasks.edit", "events.add_batch"):
            response = _clearml(server, endpoint, raw=f'{{"name": "n", "x": {_nested(depth)}}}')
            assert _meta(response)["result_code"] == 400, (depth, endpoint, response.text[:300])
            assert "nested" in _meta(response)["result_msg"]
    # 31 levels inside a value are fine
    ok = _raw_json(
        server, "PUT", f"/api/v1/tasks/{running}/runtime/", f'{{"values": {{"a": {_nested(29)}}}}}'
    )
    assert ok.status_code == 200, ok.text[:300]
    _reads_still_work(server)
    _no_server_errors(server)


# ---------------------------------------------------------------- R63 numbers


def test_numbers_are_finite_and_within_their_columns_for_every_field_and_query(server):
    draft, running = _task(server, "numbers draft"), _task(server, "numbers running", True)
    worker = server.api(server.worker_key)
    huge = str(10**30)
    raw_cases = [
        # (method, path, raw JSON, session)
        ("PATCH", f"/api/v1/tasks/{draft}/", '{"time_limit": 1e999}', None),
        ("PATCH", f"/api/v1/tasks/{draft}/", '{"time_limit": "inf"}', None),
        ("PATCH", f"/api/v1/tasks/{draft}/", '{"time_limit": "NaN"}', None),
        ("PATCH", f"/api/v1/tasks/{draft}/", '{"time_limit": NaN}', None),
        ("PATCH", f"/api/v1/tasks/{draft}/", '{"time_limit": -Infinity}', None),
        ("PATCH", f"/api/v1/tasks/{draft}/", '{"time_limit": 1e30}', None),
        ("PATCH", f"/api/v1/tasks/{draft}/", f'{{"max_attempts": {huge}}}', None),
        ("PUT", f"/api/v1/tasks/{draft}/runtime/", f'{{"values": {{"a": {huge}}}}}', None),
        ("PUT", f"/api/v1/tasks/{draft}/runtime/", '{"values": {"a": 1e999}}', None),
        (
            "POST",
            f"/api/v1/tasks/{running}/events/",
            f'{{"events": [{{"type": "scalar", "title": "t", "series": "s", "iteration": {huge}, '
            '"value": 1}]}',
            None,
        ),
        (
            "POST",
            f"/api/v1/tasks/{running}/events/",
            f'{{"events": [{{"type": "scalar", "title": "t", "series": "s", "iteration": "{huge}", '
            '"value": 1}]}',
            None,
        ),
        (
            "POST",
            f"/api/v1/tasks/{running}/events/",
            '{"events": [{"type": "scalar", "title": "t", "series": "s", "iteration": 1, '
            '"value": 1e999}]}',
            None,
        ),
        (
            "POST",
            f"/api/v1/tasks/{running}/events/",
            '{"events": [{"type": "plot", "title": "t", "series": "s", "figure": {"x": [NaN]}}]}',
            None,
        ),
        (
            "POST",
            f"/api/v1/tasks/{running}/claim/",
            f'{{"attempt": {huge}, "worker": "w"}}',
            worker,
        ),
        ("POST", f"/api/v1/tasks/{running}/heartbeat/", f'{{"attempt": {huge}}}', worker),
        (
            "POST",
            f"/api/v1/tasks/{running}/finish/",
            f'{{"attempt": {huge}, "status": "completed"}}',
            worker,
        ),
        ("POST", "/api/v1/workers/heartbeat/", f'{{"name": "w", "pid": {huge}}}', worker),
        ("POST", "/api/v1/workers/heartbeat/", '{"name": "w", "pid": -1}', worker),
        ("POST", "/api/v1/workers/unregister/", "[1, 2]", worker),
        ("POST", "/api/v1/workers/unregister/", '"w"', worker),
        (
            "POST",
            f"/api/v1/tasks/{running}/artifacts/",
            f'{{"name": "a", "kind": "file", "filename": "f", "size": {huge}}}',
            None,
        ),
        (
            "POST",
            f"/api/v1/tasks/{running}/artifacts/",
            '{"name": "a", "kind": "file", "filename": "f", "size": 1e999}',
            None,
        ),
        ("POST", "/api/v1/keys/", '{"expires_in": 1e300}', None),
        ("POST", "/api/v1/keys/", '{"expires_in": "inf"}', None),
        (
            "POST",
            "/api/v1/pipelines/",
            f'{{"controller": "{running}", "steps": [{{"name": "a", "base_task_id": "{draft}", '
            '"time_limit": "inf"}]}',
            None,
        ),
        (
            "POST",
            "/api/v1/pipelines/",
            f'{{"controller": "{running}", "steps": [{{"name": "a", "base_task_id": "{draft}", '
            f'"retry_on_failure": {huge}}}]}}',
            None,
        ),
        (
            "POST",
            "/api/v1/pipelines/",
            f'{{"controller": "{running}", "steps": [{{"name": "a", "base_task_id": "{draft}", '
            '"parameter_override": {"General/x": 1e999}}]}',
            None,
        ),
    ]
    for method, path, text, session in raw_cases:
        session = session or _api(server)
        response = session.request(
            method, f"{server.url}{path}", data=text, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (path, text[:120], response.text[:300])
    queries = [
        f"/api/v1/tasks/{running}/console/?since=abc",
        f"/api/v1/tasks/{running}/console/?since={huge}",
        f"/api/v1/tasks/{running}/console/?limit=-5",
        f"/api/v1/tasks/{running}/console/?limit=1e999",
        f"/api/v1/tasks/{running}/scalars/?max_points={huge}",
        f"/api/v1/tasks/{running}/scalars/?max_points=-1",
    ]
    for path in queries:
        response = _api(server).get(f"{server.url}{path}")
        assert response.status_code == 400, (path, response.text[:300])
    sample = _api(server).post(
        f"{server.url}/api/v1/tasks/{running}/samples/",
        data={"title": "t", "series": "s", "iteration": huge},
        files={"file": ("a.png", b"\x89PNG", "image/png")},
    )
    assert sample.status_code == 400, sample.text[:300]
    # the ClearML door: literals, iterations, pages
    clearml_raw = [
        ("tasks.create", '{"name": "nan task", "runtime": {"a": NaN}}'),
        ("tasks.create", '{"name": "inf task", "runtime": {"a": 1e999}}'),
        ("tasks.create", f'{{"name": "big task", "runtime": {{"a": {huge}}}}}'),
        ("tasks.get_all", '{"page_size": "abc"}'),
        ("tasks.get_all", f'{{"page": {huge}, "page_size": 10}}'),
        ("auth.login", '{"expiration_sec": "abc"}'),
    ]
    for endpoint, text in clearml_raw:
        response = _clearml(server, endpoint, raw=text)
        assert _meta(response)["result_code"] == 400, (endpoint, text, response.text[:300])
    added = _clearml(
        server,
        "events.add_batch",
        raw=json.dumps(
            [
                {
                    "type": "training_stats_scalar",
                    "task": running,
                    "iter": 10**30,
                    "metric": "m",
                    "variant": "v",
                    "value": 1.0,
                }
            ]
        ),
    )
    assert _meta(added)["result_code"] in (200, 400), added.text[:300]
    assert added.json()["data"].get("added", 0) == 0
    # nothing was stored that breaks a read
    assert _api(server).get(f"{server.url}/api/v1/tasks/{draft}/").json()["time_limit"] is None
    _reads_still_work(server)
    _no_server_errors(server)


# ---------------------------------------------------------------- R64 pipeline overrides


def _base(server, name: str) -> str:
    task_id = _task(server, name)
    assert (
        _api(server)
        .put(
            f"{server.url}/api/v1/tasks/{task_id}/hyperparameters/",
            json={"values": {"General": {"x": 1}}},
        )
        .ok
    )
    return task_id


def test_a_pipeline_whose_override_is_not_a_scalar_is_refused_naming_step_and_parameter(server):
    base = _base(server, "override base")
    before = _api(server).get(f"{server.url}/api/v1/tasks/?page_size=1000").json()["count"]
    bad_values = [
        ("parameter_override", {"General/x": {"a": 1}}),
        ("parameter_override", {"General/x": [1, 2]}),
        ("configuration_overrides", {"cfg": {"a": 1}}),
        ("parameter_override", {"General/" + "k" * 600: 1}),
    ]
    for key, override in bad_values:
        controller = _task(server, f"controller {key}", running=True)
        response = _api(server).post(
            f"{server.url}/api/v1/pipelines/",
            json={
                "controller": controller,
                "steps": [
                    {"name": "fine", "base_task_id": base},
                    {"name": "broken", "base_task_id": base, key: override},
                ],
            },
        )
        assert response.status_code == 400, (override, response.text[:300])
        body = response.json()
        assert body.get("step") == "broken", body
        assert body.get("parameter") in (key, *override), body
    after = _api(server).get(f"{server.url}/api/v1/tasks/?page_size=1000").json()["count"]
    assert after - before == len(bad_values)  # only the controllers: nothing was cloned
    _no_server_errors(server)


def test_a_step_that_cannot_be_launched_fails_with_its_reason_and_the_others_run(server):
    base = _base(server, "launch base")
    controller = _task(server, "launch controller", running=True)
    started = _api(server).post(
        f"{server.url}/api/v1/pipelines/",
        json={
            "controller": controller,
            # valid when given: the parameter only turns out not to fit when it is resolved
            "parameters": {"cfg": {"nested": [1, 2]}},
            "steps": [
                {
                    "name": "broken",
                    "base_task_id": base,
                    "parameter_override": {"General/x": "${pipeline.cfg}"},
                },
                {"name": "fine", "base_task_id": base, "parameter_override": {"General/x": 2}},
            ],
        },
    )
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    for _ in range(3):  # every pass (a sweep, an event) sees the same: nothing loops
        advanced = _api(server).post(f"{server.url}/api/v1/pipelines/{run_id}/advance/")
        assert advanced.status_code == 200, advanced.text[:500]
    nodes = {n["name"]: n for n in advanced.json()["nodes"]}
    assert nodes["broken"]["status"] == "failed", nodes
    assert "cannot launch" in nodes["broken"]["message"], nodes["broken"]
    assert "General/x" in nodes["broken"]["message"], nodes["broken"]
    assert nodes["fine"]["status"] == "queued", nodes
    _no_server_errors(server)
