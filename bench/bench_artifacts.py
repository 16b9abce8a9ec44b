"""1 GiB artifact upload and download through the API vs a plain copy; peak memory."""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from tests.support import start_server

from .common import line, machine, peak_rss_mb, run_python, summarize, write_result

UPLOAD = """
import json, os, resource, time
from pipelines import Task
task = Task.init(project_name="bench", task_name="artifact")
os.unlink({ballast!r})
t0 = time.perf_counter()
task.upload_artifact("blob", {path!r})
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": elapsed, "peak_mb": peak, "task": task.id}}))
"""

DOWNLOAD = """
import json, os, resource, time
from pipelines import Task
task = Task.get_task(task_id={task!r})
os.unlink({ballast!r})
t0 = time.perf_counter()
path = task.artifacts["blob"].get_local_copy()
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


def _ballast(root: Path, size: int) -> Path:
    """A file as large as the transfer, which each measurement deletes just before its
    clock starts, so the copy, the upload and the download all write into page-cache
    memory that was just freed.

    Without it the result depends on what ran before more than on the code measured: on a
    virtual machine whose host takes freed guest memory back, writing a 1 GiB file into
    memory the guest has not used lately costs 2-3 s of kernel time (host page faults),
    and 0.2 s right after another 1 GiB file was deleted; the copy used to follow the
    deletion of the previous download, and the transfers never did.
    """
    path = root / "ballast.bin"
    _make_file(path, size)
    os.sync()  # no dirty pages left for a measurement to write back
    return path


def _timed_copy(source: Path, dest: Path, ballast: Path) -> float:
    """A plain copy of the same file on the same disk (shutil.copyfile: in-kernel)."""
    os.unlink(ballast)
    started = time.perf_counter()
    shutil.copyfile(source, dest)
    return time.perf_counter() - started


def run(size: int = 1 << 30, repeats: int = 3) -> dict:
    """Copy, upload and download, interleaved `repeats` times; medians are compared.

    Each measurement starts with no dirty pages, the source file in the page cache and 1 GiB
    of page cache just freed (see _ballast), so the copy and the transfers meet the same
    state. The copy is the same bytes to the same disk; the transfers also hash them (SDK
    and server) and cross a socket, which a copy does not.
    """
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-", dir=_bench_dir()) as folder:
        root = Path(folder)
        source = root / "blob.bin"
        _make_file(source, size)
        server = start_server(root / "server")
        copies, ups, downs = [], [], []
        try:
            env = server.sdk_env()
            server_before = peak_rss_mb(server.process.pid)
            sdk_floor = json.loads(run_python(BASELINE_SDK, env))["peak_mb"]
            for _ in range(repeats):
                ballast = _ballast(root, size)
                copies.append(_timed_copy(source, root / "copy.bin", ballast))
                (root / "copy.bin").unlink()
                ballast = _ballast(root, size)
                up = UPLOAD.format(path=str(source), ballast=str(ballast))
                ups.append(json.loads(run_python(up, env, timeout=1800)))
                ballast = _ballast(root, size)
                down = DOWNLOAD.format(task=ups[-1]["task"], ballast=str(ballast))
                downs.append(json.loads(run_python(down, env, timeout=1800)))
                Path(downs[-1]["path"]).unlink(missing_ok=True)
            server_after = peak_rss_mb(server.process.pid)
        finally:
            server.stop()
            server.drop_database()
    mb = size / (1 << 20)
    copy_rates = summarize([mb / seconds for seconds in copies])
    up_rates = summarize([mb / run["seconds"] for run in ups])
    down_rates = summarize([mb / run["seconds"] for run in downs])
    result = {
        "machine": machine(),
        "size_mb": mb,
        "repeats": repeats,
        "plain_copy_mb_s": copy_rates["median"],
        "upload_mb_s": up_rates["median"],
        "download_mb_s": down_rates["median"],
        "samples": {"copy": copy_rates, "upload": up_rates, "download": down_rates},
        "server_extra_peak_mb": server_after - server_before,
        "sdk_extra_peak_mb_upload": max(run["peak_mb"] for run in ups) - sdk_floor,
        "sdk_extra_peak_mb_download": max(run["peak_mb"] for run in downs) - sdk_floor,
    }
    copy = result["plain_copy_mb_s"]
    print(f"artifacts ({mb:.0f} MiB file, local disk storage, median of {repeats})")
    print(line("plain file copy", copy, "MB/s", "", _spread(copy_rates)))
    for label, key, rates in (
        ("upload through the API", "upload_mb_s", up_rates),
        ("download through the API", "download_mb_s", down_rates),
    ):
        ratio = f"{result[key] / copy:.0%} of copy; {_spread(rates)}"
        print(line(label, result[key], "MB/s", ">= 50% of copy", ratio))
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


def _spread(rates: dict) -> str:
    return f"range {rates['min']:.0f}-{rates['max']:.0f}"


def _bench_dir() -> str | None:
    return os.environ.get("BENCH_TMPDIR")
