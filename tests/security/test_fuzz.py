"""R31/R68: schemathesis over the whole OpenAPI schema against a live server, with a key.

Bounded by count, never by time: every operation gets MAX_EXAMPLES generated cases in the
fuzzing phase, the examples and coverage phases run whole, and the stateful phase runs
MAX_EXAMPLES scenarios; the seed is fixed and generation derandomized, with no example
database, so every run (and every machine, whatever its speed) sends the same requests."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.conftest import start_live

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = "50"
SEED = "31"
# A hang guard only (the run is bounded by count): far above what the cases take.
HANG_GUARD_SECONDS = 900


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    """Its own server: the fuzzer creates, aborts and deletes whatever it can reach."""
    server = start_live(tmp_path_factory, "fuzz")
    yield server
    server.stop()
    server.drop_database()


def test_no_operation_answers_5xx_to_generated_requests(fuzz_server, tmp_path):
    schemathesis = Path(sys.executable).with_name("schemathesis")
    if not schemathesis.exists():
        schemathesis = shutil.which("schemathesis")
    assert schemathesis, "schemathesis is pinned in requirements-dev.txt"
    schema = fuzz_server.api().get(f"{fuzz_server.url}/api/schema/?format=json")
    assert schema.status_code == 200
    assert len(schema.json()["paths"]) > 30
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema.json()))
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            str(path),
            "--url",
            fuzz_server.url,
            # a staff user's key: the worker verbs and team admin are fuzzed too
            "-H",
            f"Authorization: Bearer {fuzz_server.api_key}",
            "--checks",
            "not_a_server_error",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            SEED,
            # derandomized generation, which also means no example database
            "--generation-deterministic",
            # one worker: the order of requests (and so the server's state) is the same
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--no-shrink",
            "--warnings",
            "off",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        cwd=tmp_path,  # its caches (.hypothesis, .schemathesis) stay out of the checkout
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout, result.stdout[-3000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in result.stdout, result.stdout[-3000:]
    # Django logs a 400's traceback for a SuspiciousOperation (too many fields); a 500 is
    # logged as "Internal Server Error"
    log = fuzz_server.log_path.read_text(errors="replace")
    assert "Internal Server Error" not in log, log[log.find("Internal Server Error") :][:3000]
