"""Client.download against a local HTTP server: whole bodies, hashes, and bodies cut short."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines.client import CHUNK, ApiError, Client
from pipelines.config import ClientConfig

# Larger than two read buffers, and not a multiple of them, so the buffers are reused and
# the last block is partial.
BODY = bytes(range(256)) * ((5 * CHUNK + 12345) // 256)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        send = len(BODY) // 3 if self.path == "/cut" else len(BODY)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY[:send])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def client(server):
    return Client(ClientConfig(api_url=server, api_key="k"))


def test_a_whole_body_is_stored_and_checked(client, server, tmp_path):
    digest = hashlib.sha256(BODY).hexdigest()
    dest = client.download(f"{server}/whole", tmp_path / "out.bin", expected_sha256=digest)
    assert dest.read_bytes() == BODY
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_wrong_hash_leaves_nothing(client, server, tmp_path):
    with pytest.raises(ApiError) as caught:
        client.download(f"{server}/whole", tmp_path / "out.bin", expected_sha256="0" * 64)
    assert caught.value.code == "sha256_mismatch"
    assert list(tmp_path.iterdir()) == []


def test_a_body_cut_short_is_a_clear_error_and_leaves_nothing(client, server, tmp_path):
    with pytest.raises(ApiError, match="cut off"):
        client.download(f"{server}/cut", tmp_path / "out.bin")
    assert list(tmp_path.iterdir()) == []
