"""bench/clearml_conformance.py without the suite: it says how to get it and exits 0, and
reads pytest's closing line and JUnit report as it prints them."""

import os
import subprocess
import sys

from bench.clearml_conformance import REPO, pytest_counts, summarize


def test_without_the_suite_it_says_what_to_set_and_exits_0():
    env = {k: v for k, v in os.environ.items() if k != "CLEARML_SERVER_TESTS"}
    result = subprocess.run(
        [sys.executable, "-m", "bench.clearml_conformance"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("skipped: set CLEARML_SERVER_TESTS")


def test_counts_come_from_pytests_closing_line_and_failures_are_grouped_by_file(tmp_path):
    line = "135 failed, 16 passed, 2 skipped, 1 warning in 37.99s"
    assert pytest_counts(line) == {"failed": 135, "passed": 16, "skipped": 2}
    report = tmp_path / "junit.xml"
    report.write_text(
        "<testsuites><testsuite>"
        '<testcase classname="tests.automated.test_queues.TestQueues" name="test_a"/>'
        '<testcase classname="tests.automated.test_queues.TestQueues" name="test_b">'
        '<failure message="APIError: 404 from queues.x">trace</failure></testcase>'
        '<testcase classname="tests.automated.test_users.TestUsers" name="test_c">'
        '<skipped message="needs a setting"/></testcase>'
        "</testsuite></testsuites>"
    )
    result = summarize(report)
    assert result["counts"] == {"passed": 1, "failed": 1, "skipped": 1}
    assert result["failures"] == {
        "test_queues": [("TestQueues.test_b", "APIError: 404 from queues.x")]
    }
