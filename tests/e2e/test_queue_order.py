"""Workers take tasks in their queue's order, including a task moved up after it was
enqueued (its broker message is already behind the others)."""

from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
SCRIPTS = Path(__file__).parent / "scripts"


def test_a_task_moved_to_the_front_of_its_queue_runs_first(cluster, tmp_path):
    base = cluster.register(SCRIPTS / "fault_step.py")
    queue = cluster.queue("order")
    # given three tasks enqueued in order while no worker serves their queue
    ids = [
        cluster.launch(base, queue, {"mode": "record", "handshake_dir": tmp_path}) for _ in range(3)
    ]
    # when the last one is moved to the front through the API
    for _ in range(2):
        cluster.post(f"tasks/{ids[2]}/move/", {"direction": "up"})
    waiting = cluster.get(f"queues/{queue}/entries/")
    assert [row["task"] for row in waiting] == [ids[2], ids[0], ids[1]]
    # and a worker with one slot starts
    cluster.start_worker(queue)
    for task_id in ids:
        task = cluster.wait_for_status(task_id, "completed", "failed", timeout=60)
        assert task["status"] == "completed", task["status_reason"]
    # then they ran in the queue's order, each once
    runs = (tmp_path / "runs.txt").read_text().splitlines()
    assert [line.split()[0] for line in runs] == [ids[2], ids[0], ids[1]]
    # and moving something that no longer waits is refused, saying why
    response = cluster.server.api().post(
        f"{cluster.server.url}/api/v1/tasks/{ids[0]}/move/", json={"direction": "up"}
    )
    assert response.status_code == 409 and "not waiting in a queue" in response.json()["detail"]
