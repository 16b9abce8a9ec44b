"""What `pipelines up` does with the SDK's config file of the user who runs it."""

import json

import pytest

from pipelines.launcher.up import PortInUse, check_port_free, client_config


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    monkeypatch.setenv("PIPELINES_CONFIG_FILE", str(path))
    return path


def test_a_missing_config_is_written_private(config):
    message = client_config("http://127.0.0.1:8100", "pk_a_b")
    assert json.loads(config.read_text()) == {
        "api_url": "http://127.0.0.1:8100",
        "api_key": "pk_a_b",
    }
    assert config.stat().st_mode & 0o777 == 0o600
    assert str(config) in message


def test_a_config_of_the_same_server_takes_the_new_key(config):
    config.write_text(json.dumps({"api_url": "http://127.0.0.1:8100/", "api_key": "pk_old_x"}))
    client_config("http://127.0.0.1:8100", "pk_new_y")
    assert json.loads(config.read_text())["api_key"] == "pk_new_y"


@pytest.mark.parametrize(
    "_case, content",
    [
        ("another server", json.dumps({"api_url": "http://other:8000", "api_key": "pk_o_o"})),
        ("not json", "{half a file"),
        ("not an object", "[1, 2]"),
    ],
)
def test_a_config_naming_another_server_or_unreadable_is_left_as_it_is(config, _case, content):
    config.write_text(content)
    message = client_config("http://127.0.0.1:8100", "pk_new_y")
    assert config.read_text() == content
    assert "left as it is" in message and "pipelines login --url http://127.0.0.1:8100" in message


def test_a_port_something_listens_on_is_refused_naming_it():
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortInUse, match=f"port {port} is in use"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again once it is closed
