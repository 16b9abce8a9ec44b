"""`pipelines up` as a newcomer meets it: a port already taken, a config that names another
server, and what it prints. Real `up` processes."""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support import (
    descendants,
    free_port,
    fresh_database_url,
    pid_alive,
    start_process,
    up_env,
    wait_until,
)

pytestmark = [pytest.mark.e2e]


def _env(folder: Path) -> tuple[dict, callable]:
    home, data_dir = folder / "home", folder / "data"
    home.mkdir(parents=True)
    data_dir.mkdir()
    database_url, drop = fresh_database_url(data_dir)
    return up_env(home, data_dir, database_url), drop


def _up(port: int) -> list[str]:
    return [sys.executable, "-m", "pipelines.launcher.cli", "up", "--port", str(port)]


def test_a_config_naming_another_server_is_left_alone_and_a_busy_port_fails_at_once(tmp_path):
    env, drop = _env(tmp_path / "first")
    config = Path(env["XDG_CONFIG_HOME"]) / "pipelines" / "config.json"
    config.parent.mkdir(parents=True)
    elsewhere = {"api_url": "http://10.1.2.3:8000", "api_key": "pk_theirs_secret"}
    config.write_text(json.dumps(elsewhere))
    port = free_port()
    first = start_process("up", _up(port), env, tmp_path / "first.log", cwd=tmp_path)
    children: list[int] = []
    try:
        first.wait_for_log("Press Ctrl-C to stop.", timeout=120)
        output = first.log()
        # then the other server's config is untouched, and up says where it is and how to
        # switch to this server
        assert json.loads(config.read_text()) == elsewhere
        assert f"{config} is left as it is: it points at http://10.1.2.3:8000" in output
        assert f"pipelines login --url http://127.0.0.1:{port}" in output
        assert re.search(r"credentials:\s+\S+credentials.json", output)
        children = descendants(first.pid)

        # when a second install is started on the same port
        second_env, drop_second = _env(tmp_path / "second")
        second = subprocess.run(
            _up(port), env=second_env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        drop_second()
        # then it fails at once naming the port, starting nothing, the first one unharmed
        assert second.returncode != 0
        assert f"port {port} is in use" in second.stderr, second.stderr
        assert "pipelines is up" not in second.stdout
        assert not (Path(second_env["PIPELINES_DATA_DIR"]) / "db.sqlite3").exists()
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok
        assert json.loads(config.read_text()) == elsewhere
    finally:
        if first.process.poll() is None:
            os.kill(first.pid, signal.SIGINT)
            first.process.wait(90)
        first.stop()
        for pid in children:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not [p for p in children if pid_alive(p)], timeout=15)
        drop()
