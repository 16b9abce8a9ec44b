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
        "import sys, pipelines, pipelines.automation, pipelines.worker; "
        "assert not [m for m in sys.modules if m.startswith(('django', 'webapp'))]"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
