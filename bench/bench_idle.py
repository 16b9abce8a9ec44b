"""Idle memory of `pipelines up` (server, server worker, two step workers, Redis)."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.support import REPO, free_port, wait_until

from .common import line, machine, tree_pss_mb, tree_rss_mb, write_result


def run() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as folder:
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PIPELINES_", "CELERY_", "DATABASE_URL"))
        }
        env.update(
            {
                "PIPELINES_DATA_DIR": str(Path(folder) / "data"),
                "XDG_CONFIG_HOME": str(Path(folder) / "config"),
                "PYTHONPATH": str(REPO),
            }
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.launcher.cli", "up", "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _up(url), timeout=120, interval=0.2, message="pipelines up")
            time.sleep(5)  # idle: measure after start-up work has settled, by definition
            samples, shared = [], []
            for _ in range(5):
                samples.append(tree_rss_mb(process.pid))
                shared.append(tree_pss_mb(process.pid))
                time.sleep(1)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    idle = sorted(samples)[len(samples) // 2]
    proportional = sorted(shared)[len(shared) // 2]
    result = {
        "machine": machine(),
        "idle_rss_mb": idle,
        "idle_pss_mb": proportional,
        "samples": samples,
    }
    print("idle memory of `pipelines up`")
    # The web server's processes are forked from one that loaded the app: their shared
    # pages are in each one's resident size, once in all in the proportional one.
    print(line("memory, all processes, shared pages once (PSS)", proportional, "MB", "<= 400"))
    print(line("resident memory, all processes (RSS, shared counted in each)", idle, "MB"))
    write_result("idle", result)
    return result


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.RequestException:
        return False
