"""1 GiB artifact upload and download through the API vs a plain copy; peak memory."""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from tests.support import start_server

from .common import line, machine, peak_rss_mb, run_python, write_result

UPLOAD = """
import json, resource, sys, time
from pipelines import Task
task = Task.init(project_name="bench", task_name="artifact")
t0 = time.perf_counter()
task.upload_artifact("blob", sys.argv[1] if len(sys.argv) > 1 else {path!r})
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": elapsed, "peak_mb": peak, "task": task.id}}))
"""

DOWNLOAD = """
import json, resource, time
from pipelines import Task
t0 = time.perf_counter()
path = Task.get_task(task_id={task!r}).artifacts["blob"].get_local_copy()
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": elapsed, "peak_mb": peak, "path": path}}))
"""

BASELINE_SDK = """
import resource, json
from pipelines import Task
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _make_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for _ in range(size >> 20):
            handle.write(block)


def run(size: int = 1 << 30) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-", dir=_bench_dir()) as folder:
        root = Path(folder)
        source = root / "blob.bin"
        _make_file(source, size)
        started = time.perf_counter()
        shutil.copyfile(source, root / "copy.bin")
        copy_seconds = time.perf_counter() - started
        (root / "copy.bin").unlink()
        server = start_server(root / "server")
        try:
            env = server.sdk_env()
            server_before = peak_rss_mb(server.process.pid)
            sdk_floor = json.loads(run_python(BASELINE_SDK, env))["peak_mb"]
            up = json.loads(run_python(UPLOAD.format(path=str(source)), env, timeout=1800))
            server_after_up = peak_rss_mb(server.process.pid)
            down = json.loads(run_python(DOWNLOAD.format(task=up["task"]), env, timeout=1800))
            server_after_down = peak_rss_mb(server.process.pid)
            Path(down["path"]).unlink(missing_ok=True)
        finally:
            server.stop()
            server.drop_database()
    mb = size / (1 << 20)
    result = {
        "machine": machine(),
        "size_mb": mb,
        "plain_copy_mb_s": mb / copy_seconds,
        "upload_mb_s": mb / up["seconds"],
        "download_mb_s": mb / down["seconds"],
        "server_extra_peak_mb": max(server_after_up, server_after_down) - server_before,
        "sdk_extra_peak_mb_upload": up["peak_mb"] - sdk_floor,
        "sdk_extra_peak_mb_download": down["peak_mb"] - sdk_floor,
    }
    copy = result["plain_copy_mb_s"]
    print(f"artifacts ({mb:.0f} MiB file, local disk storage)")
    print(line("plain file copy", copy, "MB/s"))
    print(
        line(
            "upload through the API",
            result["upload_mb_s"],
            "MB/s",
            ">= 50% of copy",
            f"{result['upload_mb_s'] / copy:.0%} of copy",
        )
    )
    print(
        line(
            "download through the API",
            result["download_mb_s"],
            "MB/s",
            ">= 50% of copy",
            f"{result['download_mb_s'] / copy:.0%} of copy",
        )
    )
    print(line("server extra peak memory", result["server_extra_peak_mb"], "MB", "<= 100"))
    print(
        line("SDK extra peak memory (upload)", result["sdk_extra_peak_mb_upload"], "MB", "<= 100")
    )
    print(
        line(
            "SDK extra peak memory (download)", result["sdk_extra_peak_mb_download"], "MB", "<= 100"
        )
    )
    write_result("artifacts", result)
    return result


def _bench_dir() -> str | None:
    return os.environ.get("BENCH_TMPDIR")
