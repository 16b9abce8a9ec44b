"""Faults inside and around one step, on real workers (reliability.md R2, R3, R8, R10, R12,
R25).

Every test runs on the session cluster's broker, so CI runs them on Redis and RabbitMQ alike.
"""

import time
from pathlib import Path

import pytest

from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.execution]


# created after each test (conftest.release_steps), so no step is left waiting
HANDSHAKE_FILES = ("go", "go-long")


def _rss(pid: int) -> int:
    """Resident memory of `pid` in bytes (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _runs(folder: Path, task_id: str | None = None) -> list[str]:
    path = folder / "runs.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line for line in lines if task_id is None or line.startswith(task_id)]


def test_a_step_killed_by_a_signal_or_out_of_memory_fails_and_the_worker_runs_the_next(
    cluster, base, tmp_path
):
    queue = cluster.queue("crashing")
    worker = cluster.start_worker(queue)
    # when the step dies of SIGKILL, as the kernel's OOM killer does it
    killed = cluster.launch(base, queue, {"mode": "sigkill", "handshake_dir": tmp_path})
    task = cluster.wait_for_status(killed, "completed", "failed")
    # then the task fails naming the signal, once: the message was acknowledged, not redelivered
    assert task["status"] == "failed"
    assert task["status_reason"] == "killed by signal 9 (SIGKILL)", task["status_message"]
    assert task["attempt"] == 1 and len(_runs(tmp_path, killed)) == 1
    # when the step runs out of address space (an rlimit it set itself)
    starved = cluster.launch(base, queue, {"mode": "rlimit", "handshake_dir": tmp_path})
    task = cluster.wait_for_status(starved, "completed", "failed")
    assert task["status"] == "failed" and task["status_reason"] == "exit code 1"
    assert "MemoryError" in task["status_message"]
    # and the same worker process takes the next task
    fine = cluster.launch(base, queue, {"mode": "record", "handshake_dir": tmp_path})
    assert cluster.wait_for_status(fine, "completed", "failed")["status"] == "completed"
    assert worker.process.poll() is None
    assert {cluster.task(t)["worker"] for t in (killed, starved, fine)} == {worker.name}
    worker.wait_for_log(f"task {killed} attempt 1 done")
    assert f"task {killed} attempt 1 is not claimable" not in worker.log()


def test_a_task_that_kills_its_worker_on_every_delivery_fails_after_its_attempts(
    cluster, base, tmp_path
):
    queue = cluster.queue("poison")
    first = cluster.start_worker(queue)
    task_id = cluster.launch(
        base, queue, {"mode": "kill_worker", "handshake_dir": tmp_path}, max_attempts=2
    )
    # each delivery kills the worker running it; the attempt counter is ours, on the row
    assert first.process.wait(30) == -9
    assert cluster.wait_for_status(task_id, "queued", timeout=15)["attempt"] == 2
    second = cluster.start_worker(queue)
    assert second.process.wait(30) == -9
    # so after max_attempts the task fails for good instead of looping
    task = cluster.wait_for_status(task_id, "failed", timeout=15)
    assert task["attempt"] == 2 and "stopped heartbeating (attempt 2)" in task["status_reason"]
    assert [line.split()[1] for line in _runs(tmp_path, task_id)] == ["attempt=1", "attempt=2"]
    assert cluster.queues_listed()[queue]["length"] == 0
    # and a healthy worker on that queue runs the next task, not the poison one
    third = cluster.start_worker(queue)
    fine = cluster.launch(base, queue, {"mode": "record", "handshake_dir": tmp_path})
    assert cluster.wait_for_status(fine, "completed", "failed")["status"] == "completed"
    assert len(_runs(tmp_path, task_id)) == 2 and third.process.poll() is None


def test_a_short_step_is_not_stuck_behind_a_long_one_on_a_busy_worker(cluster, base, tmp_path):
    queue = cluster.queue("prefetch")
    cluster.start_worker(queue)
    cluster.start_worker(queue)
    long = cluster.launch(
        base, queue, {"mode": "wait", "handshake_dir": tmp_path, "go_file": "go-long"}
    )
    cluster.wait_for_status(long, "in_progress", timeout=30)
    # when a short step is enqueued while one worker is busy with the long one
    short = cluster.launch(base, queue, {"mode": "record", "handshake_dir": tmp_path})
    # then the idle worker runs it at once: the busy one did not reserve it (prefetch 1)
    done = cluster.wait_for_status(short, "completed", "failed", timeout=15)
    assert done["status"] == "completed"
    assert cluster.task(long)["status"] == "in_progress"
    assert done["worker"] != cluster.task(long)["worker"]
    (tmp_path / "go-long").touch()
    assert cluster.wait_for_status(long, "completed", "failed")["status"] == "completed"


def test_a_flood_of_console_output_is_capped_head_and_tail_and_the_step_completes(
    cluster, base, tmp_path
):
    queue = cluster.queue("flood")
    worker = cluster.start_worker(queue, PIPELINES_CONSOLE_MAX_LINES="5000")
    rss_before = _rss(cluster.server.process.pid)
    started = time.monotonic()
    # when a step writes 100 MB of lines, a 20 MB line with no newline, then 2,000 long
    # non-ASCII lines
    task_id = cluster.launch(base, queue, {"mode": "flood", "handshake_dir": tmp_path})
    task = cluster.wait_for_status(task_id, "completed", "failed", timeout=120)
    # then nothing deadlocks and the step completes in bounded time
    assert task["status"] == "completed", task["status_reason"]
    assert time.monotonic() - started < 120
    console = cluster.console(task_id)
    texts = [line["text"] for line in console]
    step_lines = [line for line in console if line["stream"] != "system"]
    # the stored console is the head and the tail of what the step printed, with markers
    assert len(step_lines) <= 5000
    assert texts.index("0000000 " + "x" * 88) < 10
    assert any("console limit reached" in text for text in texts)
    assert any(text.endswith("lines dropped …") for text in texts)
    cut = [text for text in texts if text.startswith("yyyy")]
    assert len(cut) == 1 and len(cut[0]) <= 10_000 and cut[0].endswith("[line cut]")
    # the wide tail lines arrive (together they are ~50 MB of JSON: several requests)
    wide = [text for text in texts if text[5:6] == "\u00e9"]
    assert len(wide) == 2000 and wide[-1].startswith("1999 ")
    assert [line["text"] for line in step_lines[-2:]] == ["FLOOD DONE", "STEP DONE"]
    assert "refused" not in worker.log()
    # and the server did not buffer the flood
    assert _rss(cluster.server.process.pid) - rss_before < 200 * 1024 * 1024


def test_lost_responses_are_retried_without_applying_anything_twice(cluster, base, tmp_path):
    queue = cluster.queue("lossy")
    proxy = TcpProxy(cluster.server.port)
    worker = None
    try:
        worker = cluster.start_worker(queue, PIPELINES_API_URL=proxy.url)
        # when the responses to the claim, the first console batch and the final report
        # are lost after the server has acted on each request
        proxy.drop_response_to(b"/claim/ ", b"/console/ ", b"/finish/ ")
        task_id = cluster.launch(base, queue, {"mode": "record", "handshake_dir": tmp_path})
        task = cluster.wait_for_status(task_id, "completed", "failed", timeout=30)
        # (the worker is through once its retried report has been answered)
        worker.wait_for_log(f"task {task_id} attempt 1 done")
        assert sorted(proxy.dropped) == [b"/claim/ ", b"/console/ ", b"/finish/ "]
        # then the retries find their request already applied: one claim, one run, one end
        assert task["status"] == "completed", task["status_reason"]
        assert task["attempt"] == 1 and len(_runs(tmp_path, task_id)) == 1
        # and no console line was stored twice
        texts = [line["text"] for line in cluster.console(task_id)]
        assert len(texts) == len(set(texts)), texts
        assert texts.count("STEP DONE") == 1
        log = worker.log()
        assert "is not claimable" not in log and "moved on before its report" not in log
    finally:
        if worker is not None:
            worker.stop()  # while it can still reach the server to unregister
        proxy.cut()


_ENQUEUE_IN_A_TRANSACTION = """
import time
from django.db import transaction
from webapp.core import services
from webapp.core.models import Task

base = Task.objects.get(pk="{base}")
params = {{"General": {{"mode": "record", "handshake_dir": "{folder}"}}}}
try:
    with transaction.atomic():
        rolled = services.clone_task(base, user=base.created_by, hyperparameters=params)
        services.enqueue_task(rolled, "{queue}")
        print("ROLLED_BACK", rolled.id, flush=True)
        raise RuntimeError("rollback")
except RuntimeError:
    pass
with transaction.atomic():
    task = services.clone_task(base, user=base.created_by, hyperparameters=params)
    services.enqueue_task(task, "{queue}")
    print("COMMITTED", task.id, flush=True)
    time.sleep(2)  # a worker racing the commit would find the task still a draft
"""


def test_enqueue_inside_a_transaction_publishes_on_commit_and_nothing_on_rollback(
    cluster, base, tmp_path
):
    queue = cluster.queue("commit")
    worker = cluster.start_worker(queue)
    code = _ENQUEUE_IN_A_TRANSACTION.format(base=base, folder=tmp_path, queue=queue)
    output = cluster.server.manage("shell", "-c", code)
    rolled = output.split("ROLLED_BACK ")[1].split()[0]
    committed = output.split("COMMITTED ")[1].split()[0]
    # the committed task runs from its first message: the worker found it queued
    task = cluster.wait_for_status(committed, "completed", "failed")
    assert task["status"] == "completed" and task["attempt"] == 1
    worker.wait_for_log(f"claimed task {committed} attempt 1")
    # the rolled-back one left no message: it would have come first on this FIFO queue
    assert rolled not in worker.log()
    response = cluster.server.api().get(f"{cluster.server.url}/api/v1/tasks/{rolled}/")
    assert response.status_code == 404
    assert f"task {committed} attempt 1 is not claimable" not in worker.log()
