"""The SDK and step workers must run without Django: they only speak REST and the broker."""

import ast
import subprocess
import sys
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "pipelines"


def test_no_module_of_the_sdk_imports_django_or_webapp():
    offenders = []
    for path in SDK.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in ("django", "webapp")
            ]
    assert offenders == []


def test_only_client_py_uses_requests():
    users = [
        path.name
        for path in SDK.rglob("*.py")
        if "import requests" in path.read_text() and path.name != "client.py"
    ]
    assert users == []


def test_importing_the_sdk_loads_no_django():
    code = (
        "import sys, pipelines, pipelines.automation, pipelines.worker.step_worker, "
        "pipelines.launcher.cli, pipelines.launcher.up, pipelines.clearml.runner; "
        "assert not [m for m in sys.modules if m.startswith(('django', 'webapp'))]"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_dag_module_the_server_imports_is_pure():
    """The server imports pipelines.dag and pipelines.parameters: no HTTP client, no
    requests, no exit hooks come with them."""
    code = (
        "import atexit, sys\n"
        "registered = []\n"
        "atexit.register = lambda *a, **k: registered.append(a)\n"
        "from pipelines import dag, parameters\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('requests', 'pipelines.')))\n"
        "assert loaded == ['pipelines.dag', 'pipelines.parameters'], loaded\n"
        "assert not registered, registered\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_sdk_names_still_import_from_the_top():
    code = (
        "from pipelines import Logger, PipelineController, StorageManager, Task\n"
        "from pipelines.automation import PipelineController as Controller\n"
        "assert Controller is PipelineController\n"
        "import pipelines\n"
        "assert set(pipelines.__all__) <= set(dir(pipelines))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
