"""clearml-server's own API tests, run against a server of ours: a conformance measure.

    CLEARML_SERVER_TESTS=/path/to/clearml-server/apiserver python -m bench.clearml_conformance

The suite (`apiserver/tests/automated` of the clearml-server repository) is never part of
this project (its licence is SSPL): point CLEARML_SERVER_TESTS at a copy of its `apiserver`
folder. Without it this script says so and exits 0.

It runs the suite with the interpreter CONFORMANCE_PYTHON (default `.venv-conformance`,
created on first use from requirements-conformance.txt: the packages the suite's imports
need; no MongoDB or Elasticsearch is used). The server is a fresh one of ours with an
admin key created by `bootstrap`, or the one at CONFORMANCE_SERVER_URL with the key
CONFORMANCE_API_KEY. bench/clearml_conformance_plugin.py points the suite's client at it.
Extra arguments go to pytest (`-k queues`, a test file's path relative to the suite).

Prints the pass count and the failures grouped by test file and by first error line.
"""

import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PYTHON = REPO / ".venv-conformance" / "bin" / "python"
REQUIREMENTS = REPO / "requirements-conformance.txt"


def _suite() -> Path | None:
    location = os.environ.get("CLEARML_SERVER_TESTS", "").strip()
    if not location:
        return None
    path = Path(location).expanduser().resolve()
    # Accept the repository root, its apiserver/ folder or apiserver/tests/automated.
    for candidate in (path, path / "apiserver", *path.parents):
        if (candidate / "tests" / "automated" / "__init__.py").exists():
            return candidate
    raise SystemExit(f"CLEARML_SERVER_TESTS={location} holds no apiserver/tests/automated")


def _python() -> Path:
    python = Path(os.environ.get("CONFORMANCE_PYTHON", DEFAULT_PYTHON))
    if python.exists():
        return python
    if python != DEFAULT_PYTHON:
        raise SystemExit(f"CONFORMANCE_PYTHON={python} does not exist")
    subprocess.run([sys.executable, "-m", "venv", str(python.parent.parent)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True
    )
    return python


def _keys(api_key: str) -> tuple[str, str]:
    _, prefix, secret = api_key.split("_", 2)
    return f"pk_{prefix}", secret


def _run_suite(suite: Path, python: Path, url: str, api_key: str, args: list[str]) -> Path:
    access, secret = _keys(api_key)
    report = Path(tempfile.mkdtemp(prefix="clearml-conformance-")) / "junit.xml"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CLEARML", "PYTHONPATH"))},
        "PYTHONPATH": os.pathsep.join([str(suite.parent), str(REPO)]),
        "CONFORMANCE_API_URL": f"{url.rstrip('/')}/clearml-api",
        "CONFORMANCE_ACCESS_KEY": access,
        "CONFORMANCE_SECRET_KEY": secret,
    }
    # Arguments go to pytest as they are; without a test path of the suite, all of it.
    named = any((suite / a.split("::")[0]).exists() for a in args if not a.startswith("-"))
    targets = [] if named else ["tests/automated"]
    process = subprocess.Popen(
        [
            str(python),
            "-m",
            "pytest",
            "-p",
            "bench.clearml_conformance_plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            "--tb=line",
            f"--junitxml={report}",
            *args,
            *targets,
        ],
        cwd=suite,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    last = ""
    for line in process.stdout:
        sys.stdout.write(line)
        if line.strip():
            last = line.strip()
    process.wait()
    return report, last


def pytest_counts(line: str) -> dict:
    """pytest's closing line as counts: subtests (unittest's subTest) are counted in it,
    so it is the measure, and the JUnit report only groups the failures."""
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", line)}


def summarize(report: Path) -> dict:
    """Counts and failures per test file, from pytest's JUnit XML."""
    counts = defaultdict(int)
    failures: dict[str, list[tuple[str, str]]] = defaultdict(list)
    # The report is the one our own pytest run just wrote.
    for case in ET.parse(report).iter("testcase"):  # noqa: S314
        group = case.get("classname", "").rpartition(".")[0].rpartition(".")[2] or "?"
        name = f"{case.get('classname', '').rpartition('.')[2]}.{case.get('name')}"
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if case.find("skipped") is not None:
            counts["skipped"] += 1
        elif problem is not None:
            counts["failed"] += 1
            first = (problem.get("message") or problem.text or "").strip().splitlines()
            failures[group].append((name, (first[0] if first else "")[:200]))
        else:
            counts["passed"] += 1
    return {"counts": dict(counts), "failures": dict(failures)}


def main(argv: list[str]) -> int:
    suite = _suite()
    if suite is None:
        print(
            "skipped: set CLEARML_SERVER_TESTS to a copy of clearml-server's apiserver/ folder "
            "(its tests are not part of this project) to run the ClearML conformance suite"
        )
        return 0
    python = _python()
    url = os.environ.get("CONFORMANCE_SERVER_URL", "").strip()
    server = None
    if url:
        api_key = os.environ["CONFORMANCE_API_KEY"]
    else:
        sys.path.insert(0, str(REPO))
        from tests.support import start_server

        data_dir = Path(tempfile.mkdtemp(prefix="clearml-conformance-server-"))
        # Nothing consumes broker messages here: an in-memory broker keeps it self-contained.
        server = start_server(data_dir, CELERY_BROKER_URL="memory://")
        url, api_key = server.url, server.api_key
        print(f"server of ours on {url} (log: {server.log_path})")
    try:
        report, last = _run_suite(suite, python, url, api_key, argv)
    finally:
        if server is not None:
            server.stop()
            server.drop_database()
    result = summarize(report)
    counts = pytest_counts(last) or result["counts"]
    counts["failed"] = counts.get("failed", 0) + counts.pop("error", 0) + counts.pop("errors", 0)
    total = sum(counts.values())
    for group, cases in sorted(result["failures"].items(), key=lambda kv: -len(kv[1])):
        print(f"\n{group}: {len(cases)} failed")
        for name, reason in cases:
            print(f"  {name}: {reason}")
    print(
        f"\nclearml-server API tests: {counts.get('passed', 0)} passed, "
        f"{counts.get('failed', 0)} failed, {counts.get('skipped', 0)} skipped of {total}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
