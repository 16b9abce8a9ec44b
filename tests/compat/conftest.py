"""The ClearML conformance world: the official `clearml` SDK in a virtual environment of its
own, a live server, and two ClearML runners (`services` for controllers, `default` for steps).
"""

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support import REPO, ServerProcess, start_process, start_server

SEED = Path(__file__).parent / "clearml_seed"
# Pinned: the SDK's protocol (v2.23 schema, json-lines events, fileserver layout) is what the
# compat layer was built against; a new minor release may call endpoints we lack.
REQUIREMENTS = ["clearml==2.1.12", "scikit-learn<1.8", "matplotlib", "joblib", "pandas<3"]
AGENT_REQUIREMENTS = ["clearml-agent==3.0.3"]
VENV = Path(os.environ.get("CLEARML_TEST_VENV", REPO / ".venv-clearml"))
IRIS_URL = "https://github.com/allegroai/events/raw/master/odsc20-east/generic/iris_dataset.pkl"


def _pypi_reachable() -> bool:
    try:
        requests.head("https://pypi.org/simple/clearml/", timeout=15)
    except requests.RequestException:
        return False
    return True


def _install(requirements: list[str]) -> Path:
    """The venv's interpreter with `requirements` installed (reused while they are unchanged);
    skips the calling test only when PyPI cannot be reached to install them."""
    python = VENV / "bin" / "python"
    digest = hashlib.sha256(" ".join(requirements).encode()).hexdigest()[:12]
    stamp = VENV / f".installed-{digest}"
    if python.exists() and stamp.exists():
        return python
    if not _pypi_reachable():
        pytest.skip(
            f"PyPI is unreachable, so {' '.join(requirements)} cannot be installed into "
            f"{VENV} for the ClearML conformance test"
        )
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    # Keep the environment out of version control wherever it is created.
    (VENV / ".gitignore").write_text("*\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *requirements],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, f"pip install failed:\n{install.stdout}\n{install.stderr}"
    stamp.touch()
    return python


@pytest.fixture(scope="session")
def clearml_python() -> Path:
    return _install(REQUIREMENTS)


@pytest.fixture(scope="session")
def clearml_agent(clearml_python) -> Path:
    """The real clearml-agent, beside the SDK in the same environment."""
    _install([*REQUIREMENTS, *AGENT_REQUIREMENTS])
    return VENV / "bin" / "clearml-agent"


def seed_iris_cache(home: Path) -> None:
    """Step 1 downloads the iris pickle from GitHub; put it in both caches the SDK may read
    (the standalone layout, and the one clearml-agent's configuration switches to)."""
    from sklearn.datasets import load_iris

    data = pickle.dumps(load_iris())
    digest = hashlib.md5(IRIS_URL.encode(), usedforsecurity=False).hexdigest()
    cache = home / ".clearml" / "cache"
    for path in (
        cache / "storage_manager" / "global" / f"{digest}.iris_dataset.pkl",
        cache / "storage" / "https" / IRIS_URL.removeprefix("https://"),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def clearml_keys(api_key: str) -> tuple[str, str]:
    """Our key `pk_<prefix>_<secret>` as ClearML's access key and secret key."""
    _, prefix, secret = api_key.split("_", 2)
    return f"pk_{prefix}", secret


@dataclass
class ClearmlWorld:
    server: ServerProcess
    python: Path
    scripts: Path
    env: dict
    runner_env: dict
    root: Path
    home: Path
    runners: list

    def run(self, script: str, timeout: float = 180):
        """`python script.py` from the user's own (non-git) directory, as a user would."""
        return subprocess.run(
            [str(self.python), script],
            cwd=self.scripts,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run_all(self, scripts, timeout: float = 180) -> list[subprocess.CompletedProcess]:
        """Several scripts at once; their results in the same order."""
        processes = [
            subprocess.Popen(
                [str(self.python), script],
                cwd=self.scripts,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for script in scripts
        ]
        results = []
        for script, process in zip(scripts, processes, strict=True):
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
                stderr += f"\n[timed out after {timeout}s]"
            results.append(subprocess.CompletedProcess(script, process.returncode, stdout, stderr))
        return results

    def stop_runners(self) -> None:
        for runner in self.runners:
            runner.stop()

    def compat(self, endpoint: str, **body) -> dict:
        """One ClearML API call with our API key as the bearer (the envelope's data)."""
        response = requests.post(
            f"{self.server.url}/clearml-api/v2.23/{endpoint}",
            json=body,
            headers={"Authorization": f"Bearer {self.server.api_key}"},
            timeout=30,
        )
        payload = response.json()
        assert payload["meta"]["result_code"] == 200, payload["meta"]
        return payload["data"]


@pytest.fixture(scope="session")
def clearml_world(tmp_path_factory, clearml_python):
    root = tmp_path_factory.mktemp("clearml")
    # Nothing here consumes broker messages (the ClearML runners poll their queues over the
    # protocol), so the server publishes into an in-memory broker.
    server = start_server(root / "server", CELERY_BROKER_URL="memory://")
    processes = []
    try:
        home = root / "home"
        seed_iris_cache(home)
        scripts = root / "scripts"
        shutil.copytree(SEED, scripts)
        access, secret = clearml_keys(server.api_key)
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PIPELINES_", "DJANGO_", "DATABASE_URL", "CLEARML", "TRAINS"))
        }
        env = {
            **base,
            "HOME": str(home),
            "CLEARML_API_HOST": f"{server.url}/clearml-api",
            "CLEARML_FILES_HOST": f"{server.url}/clearml-files",
            "CLEARML_WEB_HOST": server.url,
            "CLEARML_API_ACCESS_KEY": access,
            "CLEARML_API_SECRET_KEY": secret,
            "PYTHONUNBUFFERED": "1",
        }
        # The runners are configured like our step workers (server URL and a worker key);
        # they hand each task the CLEARML_* variables derived from them.
        runner_env = {
            **base,
            "HOME": str(home),
            "PIPELINES_API_URL": server.url,
            "PIPELINES_API_KEY": server.worker_key,
            "PIPELINES_CONFIG_FILE": str(root / "no-config.json"),
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
        }
        for queue, slots in (("services", 2), ("default", 2)):
            processes.append(
                start_process(
                    f"runner-{queue}",
                    [
                        sys.executable,
                        "-m",
                        "pipelines.clearml.runner",
                        "--queue",
                        queue,
                        "--concurrency",
                        str(slots),
                        "--name",
                        f"runner-{queue}",
                        "--python",
                        str(clearml_python),
                        "--poll",
                        "0.5",
                        "--work-dir",
                        str(root),
                    ],
                    runner_env,
                    root / "logs" / f"runner-{queue}.log",
                )
            )
        for process in processes:
            process.wait_for_log("serves", timeout=30)
        yield ClearmlWorld(server, clearml_python, scripts, env, runner_env, root, home, processes)
    finally:
        for process in processes:
            process.stop()
        server.stop()
        server.drop_database()


@pytest.fixture(scope="session")
def compat_server(tmp_path_factory):
    """A server for the protocol tests (no SDK needed, no broker consumer)."""
    server = start_server(tmp_path_factory.mktemp("compat-server"), CELERY_BROKER_URL="memory://")
    yield server
    server.stop()
    server.drop_database()
