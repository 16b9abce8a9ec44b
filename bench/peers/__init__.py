"""Side-by-side runs of peer tools (Prefect, MLflow) in the same benchmark run.

The peers live in their own interpreter so their dependencies never meet ours:
`make bench-peers` creates `.venv-peers` from `requirements-peers.txt`, or
`BENCH_PEER_PYTHON` names any interpreter that has them. Without one, the benchmark says
how to get it and measures the rest.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
INSTALL_HINT = "make bench-peers (or set BENCH_PEER_PYTHON)"


def peer_python(module: str) -> str | None:
    """An interpreter that can import `module`: BENCH_PEER_PYTHON, .venv-peers, or ours."""
    candidates = [os.environ.get("BENCH_PEER_PYTHON"), REPO / ".venv-peers/bin/python"]
    candidates.append(sys.executable)
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        probe = subprocess.run(
            [str(candidate), "-c", f"import {module}"], capture_output=True, timeout=120
        )
        if probe.returncode == 0:
            return str(candidate)
    return None


def _last_number(result: subprocess.CompletedProcess) -> float:
    if result.returncode != 0:
        raise RuntimeError(f"peer run failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def prefect_seed(repeats: int) -> dict:
    """Wall time of the seed's work as a 3-task Prefect flow, the whole command timed like
    our controller script is (interpreter start, imports, the flow)."""
    python = peer_python("prefect")
    if python is None:
        return {"note": f"prefect not installed ({INSTALL_HINT})"}
    env = {**os.environ, "MPLBACKEND": "Agg"}
    samples = []
    for _ in range(repeats + 1):
        with tempfile.TemporaryDirectory(prefix="bench-prefect-") as home:
            started = time.perf_counter()
            result = subprocess.run(
                [python, str(HERE / "prefect_seed.py")],
                env={**env, "PREFECT_HOME": home},
                capture_output=True,
                text=True,
                timeout=600,
            )
            elapsed = time.perf_counter() - started
        _last_number(result)
        samples.append(elapsed)
    return {"seconds_median": statistics.median(samples[1:]), "samples": samples[1:]}


def prefect_map(count: int, repeats: int) -> dict:
    """`count` trivial items through Prefect's `task.map`: the whole command timed (as our
    controller script is), the map inside the flow, and the whole command again with each
    item's result persisted as well as its state."""
    python = peer_python("prefect")
    if python is None:
        return {"note": f"prefect not installed ({INSTALL_HINT})"}
    found: dict = {}
    for mode in ("plain", "persist"):
        walls, inside = [], []
        for _ in range(repeats + 1):
            with tempfile.TemporaryDirectory(prefix="bench-prefect-") as home:
                started = time.perf_counter()
                result = subprocess.run(
                    [python, str(HERE / "prefect_map.py"), str(count), mode],
                    env={**os.environ, "PREFECT_HOME": home},
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                walls.append(time.perf_counter() - started)
            _last_number(result)
            inside.append(float(result.stdout.strip().splitlines()[-2]))
        if mode == "plain":
            found.update(
                seconds_median=statistics.median(walls[1:]),
                map_seconds_median=statistics.median(inside[1:]),
                samples=walls[1:],
            )
        else:
            found["persisted_seconds_median"] = statistics.median(walls[1:])
    return found


def mlflow_log_batch(points: int, repeats: int) -> dict:
    """Metric points per second through a local `mlflow server` (SQLite backend)."""
    python = peer_python("mlflow")
    if python is None:
        return {"note": f"mlflow not installed ({INSTALL_HINT})"}
    from tests.support import free_port

    with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as folder:
        port = free_port()
        log = open(Path(folder) / "server.log", "w")
        server = subprocess.Popen(
            [
                python,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{folder}/mlflow.db",
                "--default-artifact-root",
                f"{folder}/artifacts",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
            start_new_session=True,
        )
        uri = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(uri, server, Path(folder) / "server.log")
            rates = []
            for _ in range(repeats + 1):
                result = subprocess.run(
                    [python, str(HERE / "mlflow_scalars.py"), uri, str(points)],
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                rates.append(_last_number(result))
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()
    return {"scalars_per_second": statistics.median(rates[1:]), "samples": rates[1:]}


def _wait_healthy(uri: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"mlflow server exited:\n{log.read_text()[-2000:]}")
        try:
            if requests.get(f"{uri}/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"mlflow server not healthy after {timeout}s")
