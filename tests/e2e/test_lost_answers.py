"""The SDK's clone, enqueue and pipeline start when the server's answer is lost on the way
back (reliability.md R41): the retry is answered from the first attempt, nothing twice."""

import pytest

from tests.support import run_script
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

CLONE_AND_ENQUEUE = """
import sys
from pipelines import Task

base = Task.get_task(task_id=sys.argv[1])
copy = Task.clone(source_task=base, name="lost answers copy")
Task.enqueue(copy, queue_name="lost-answers")
print("CLONE", copy.id, flush=True)
"""


def test_clone_and_enqueue_whose_answers_are_lost_happen_once(server, tmp_path):
    api = server.api()
    base = api.post(
        f"{server.url}/api/v1/tasks/",
        json={"project_name": "e2e", "name": "lost answers base", "script": {"code": "print(1)"}},
    )
    assert base.status_code == 201, base.text
    script = tmp_path / "clone_and_enqueue.py"
    script.write_text(CLONE_AND_ENQUEUE)
    proxy = TcpProxy(server.port)
    try:
        # given a network that loses the answers to the clone and to the enqueue
        proxy.drop_response_to(b"/clone/ ", b"/enqueue/ ")
        # when the SDK clones and enqueues through it
        result = run_script(
            script, server.sdk_env(PIPELINES_API_URL=proxy.url), args=[base.json()["id"]]
        )
    finally:
        proxy.cut()
    # then both calls succeed for the script, after their retries
    assert result.returncode == 0, result.stderr
    assert sorted(proxy.dropped) == [b"/clone/ ", b"/enqueue/ "]
    clone_id = result.stdout.split("CLONE ")[1].split()[0]
    # and the server holds one clone, queued once
    copies = api.get(
        f"{server.url}/api/v1/tasks/", params={"name": "lost answers copy", "project_name": "e2e"}
    ).json()["results"]
    assert [row["id"] for row in copies] == [clone_id]
    assert copies[0]["status"] == "queued" and copies[0]["attempt"] == 1
    queue = api.get(f"{server.url}/api/v1/queues/").json()
    rows = queue["results"] if isinstance(queue, dict) else queue
    entries = next(row for row in rows if row["name"] == "lost-answers")
    assert entries["length"] == 1
