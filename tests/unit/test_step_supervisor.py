"""The step supervisor that forks a worker's steps: process groups, limits, and what happens
when the worker or the supervisor itself dies. Real processes, no server."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from pipelines.worker.step_setup import StepSupervisor
from tests.support import REPO, pid_alive, wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux processes")

# A step that starts a child ignoring SIGTERM, prints both pids, and waits.
FAMILY = "trap '' TERM; sleep 300 & echo $$ $!; wait"


@pytest.fixture
def supervisor():
    supervisor = StepSupervisor()
    yield supervisor
    supervisor.close()


def _family(supervisor) -> tuple:
    process = supervisor.spawn(["/bin/sh", "-c", FAMILY], "/", dict(os.environ))
    leader, child = (int(pid) for pid in process.stdout.readline().split())
    return process, leader, child


def test_a_step_leads_its_own_group_and_reports_its_exit_code(supervisor, tmp_path):
    code = "import os, sys; print(os.getpid(), os.getpgid(0), os.getsid(0)); sys.exit(3)"
    process = supervisor.spawn([sys.executable, "-c", code], tmp_path, dict(os.environ))
    assert process.wait(10) == 3
    pid, group, session = (int(x) for x in process.stdout.read().split())
    assert pid == group == session == process.pid


def test_sigterm_reaches_the_group_and_the_step_ends_once_its_group_is_gone(supervisor):
    process, leader, child = _family(supervisor)
    process.signal_group(signal.SIGTERM)
    assert process.wait(0.5) is None and pid_alive(child)  # both ignore SIGTERM
    process.signal_group(signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL
    assert not pid_alive(leader)
    # Killed with the group; on a loaded machine it may be scheduled to die a moment later.
    wait_until(lambda: not pid_alive(child), timeout=10, message="the step's child to die")


def test_a_program_that_cannot_run_and_a_bad_limit_are_reported(supervisor, monkeypatch):
    with pytest.raises(OSError, match="cannot run /nonexistent/python"):
        supervisor.spawn(["/nonexistent/python"], "/", {})
    monkeypatch.setenv("PIPELINES_STEP_RLIMIT_NOFILE", "lots")
    process = supervisor.spawn(["/bin/true"], "/", {})
    assert process.wait(10) == 126
    assert b"cannot apply the step resource limits" in process.stderr.read()
    monkeypatch.setenv("PIPELINES_STEP_RLIMIT_NOFILE", "64")
    process = supervisor.spawn(["/bin/sh", "-c", "ulimit -n"], "/", {})
    assert process.wait(10) == 0 and process.stdout.read().strip() == b"64"


def test_a_worker_killed_with_sigkill_takes_its_steps_groups_down(tmp_path):
    worker = textwrap.dedent(
        f"""
        import os, sys, time
        from pipelines.worker.step_setup import StepSupervisor
        process = StepSupervisor().spawn(["/bin/sh", "-c", {FAMILY!r}], "/", dict(os.environ))
        print(process.stdout.readline().decode().strip(), flush=True)
        time.sleep(300)
        """
    )
    fake = subprocess.Popen(
        [sys.executable, "-c", worker],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        leader, child = (int(pid) for pid in fake.stdout.readline().split())
        assert pid_alive(leader) and pid_alive(child)
        # the worker dies with everything in its process group, as a crash would take it
        os.killpg(fake.pid, signal.SIGKILL)
        fake.wait(10)
        wait_until(lambda: not pid_alive(leader), timeout=5, message="the step to die")
        wait_until(lambda: not pid_alive(child), timeout=5, message="the step's child to die")
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait(10)


def test_a_supervisor_that_dies_ends_its_steps_and_the_next_start_replaces_it(supervisor):
    process, leader, child = _family(supervisor)
    os.kill(supervisor._process.pid, signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL
    wait_until(lambda: not pid_alive(leader) and not pid_alive(child), timeout=5)
    again = supervisor.spawn(["/bin/true"], "/", {})
    assert again.wait(10) == 0
