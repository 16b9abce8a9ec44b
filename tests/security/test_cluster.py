"""Against a whole cluster (broker, server, server worker, step workers as processes):
R30 concurrent clones and enqueues, R39 resource limits on step code."""

import hashlib
import json
import textwrap
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.support import start_cluster, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.execution]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = start_cluster(tmp_path_factory.mktemp("security-cluster"))
    yield running
    running.stop()


def _create(cluster, name: str, code: str = "print('ok')", **extra) -> dict:
    return cluster.post(
        "tasks/",
        {
            "project_name": "security",
            "name": name,
            "script": {"entry_point": f"{name}.py", "code": code},
            **extra,
        },
    )


def _digest(task: dict) -> str:
    keep = {k: task[k] for k in ("script", "hyperparameters", "configuration", "status")}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()


def _broker_messages(cluster, queue: str) -> int | None:
    """Messages waiting in a Redis broker queue (None on other brokers)."""
    url = cluster.broker_url
    import redis

    if url.startswith("redis+socket://"):
        client = redis.Redis(unix_socket_path=urlsplit(url).path)
    elif url.startswith("redis://"):
        client = redis.Redis.from_url(url)
    else:
        return None
    return sum(client.llen(key) for key in client.scan_iter(match=f"{queue}*"))


# ---------------------------------------------------------------- R30


def test_twenty_concurrent_clones_are_distinct_and_leave_the_base_alone(cluster):
    base = _create(cluster, "base", hyperparameters={"General": {"lr": 0.1, "layers": "[8, 4]"}})
    before = _digest(cluster.task(base["id"]))
    api = cluster.server.api()
    url = f"{cluster.server.url}/api/v1/tasks/{base['id']}/clone/"

    def clone(index: int):
        body = {"name": f"clone {index}", "hyperparameters": {"General": {"seed": index}}}
        return api.post(url, json=body, timeout=30)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(clone, range(20)))
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    clones = [r.json() for r in responses]
    assert len({c["id"] for c in clones}) == 20
    for index, copy in enumerate(clones):
        general = copy["hyperparameters"]["General"]
        assert general["seed"]["value"] == str(index)
        assert general["lr"]["value"] == "0.1" and general["layers"]["value"] == "[8, 4]"
        assert copy["parent"] == base["id"] and copy["status"] == "created"
    # each clone owns its copy: changing one changes neither the base nor the others
    cluster.patch(f"tasks/{clones[0]['id']}/", {"hyperparameters": {"General": {"lr": 9}}})
    assert cluster.task(clones[1]["id"])["hyperparameters"]["General"]["lr"]["value"] == "0.1"
    assert _digest(cluster.task(base["id"])) == before


def test_ten_concurrent_enqueues_of_one_task_queue_it_once(cluster):
    queue = cluster.queue("race")  # no worker consumes it: the message stays countable
    task = _create(cluster, "raced")
    api = cluster.server.api()
    url = f"{cluster.server.url}/api/v1/tasks/{task['id']}/enqueue/"
    with ThreadPoolExecutor(10) as pool:
        responses = list(
            pool.map(lambda _: api.post(url, json={"queue": queue}, timeout=30), range(10))
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 9, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["error"] == "conflict"
        assert refused.json()["status"] == "queued"
    after = cluster.task(task["id"])
    assert (after["status"], after["attempt"], after["queue_name"]) == ("queued", 1, queue)
    assert cluster.get(f"queues/{queue}/")["length"] == 1
    count = _broker_messages(cluster, queue)
    if count is not None:
        wait_until(lambda: _broker_messages(cluster, queue) >= 1, timeout=10)
        assert _broker_messages(cluster, queue) == 1


# ---------------------------------------------------------------- R39


LIMITS = {
    "PIPELINES_STEP_RLIMIT_AS_MB": "512",
    "PIPELINES_STEP_RLIMIT_FSIZE_MB": "8",
    "PIPELINES_STEP_RLIMIT_NOFILE": "128",
    "PIPELINES_STEP_RLIMIT_CPU_SECONDS": "30",
}
ABUSE = {
    "memory": ("blob = bytearray(2 * 1024**3)\nprint('allocated', len(blob))", "MemoryError"),
    "disk": (
        "with open('big.bin', 'wb') as fh:\n    for _ in range(64):\n"
        "        fh.write(b'x' * 1024 * 1024)\nprint('wrote 64 MB')",
        "File too large",
    ),
    "fds": (
        "import os\nfds = [os.open(os.devnull, os.O_RDONLY) for _ in range(10_000)]\n"
        "print('opened', len(fds))",
        "Too many open files",
    ),
}


def test_steps_over_their_resource_limits_fail_and_the_worker_carries_on(cluster):
    queue = cluster.queue("limited")
    worker = cluster.start_worker(queue, **LIMITS)
    pid = worker.pid
    for name, (code, symptom) in ABUSE.items():
        task = _create(cluster, f"abuse {name}", code=textwrap.dedent(code))
        cluster.post(f"tasks/{task['id']}/enqueue/", {"queue": queue})
        ended = cluster.wait_for_status(task["id"], "failed", "completed", timeout=60)
        assert ended["status"] == "failed", (name, cluster.console_text(task["id"])[-2000:])
        assert ended["status_reason"] == "exit code 1", (name, ended["status_reason"])
        assert symptom in ended["status_message"], (name, ended["status_message"][-500:])
    # the worker is the same process, alive, and runs the next task as usual
    assert worker.process.poll() is None and worker.pid == pid
    task = _create(cluster, "after abuse", code="print('still fine')")
    cluster.post(f"tasks/{task['id']}/enqueue/", {"queue": queue})
    done = cluster.wait_for_status(task["id"], "completed", "failed", timeout=60)
    assert done["status"] == "completed", cluster.console_text(task["id"])
    assert "still fine" in cluster.console_text(task["id"])
    # and its own limits are untouched (only the step's were lowered)
    with open(f"/proc/{pid}/limits") as fh:
        limits = fh.read()
    assert "Max open files" in limits
    soft_nofile = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert int(soft_nofile.split()[3]) > 128


def test_a_bad_limit_value_fails_the_step_with_a_clear_message(cluster):
    queue = cluster.queue("badlimit")
    cluster.start_worker(queue, PIPELINES_STEP_RLIMIT_NOFILE="lots")
    task = _create(cluster, "bad limit")
    cluster.post(f"tasks/{task['id']}/enqueue/", {"queue": queue})
    ended = cluster.wait_for_status(task["id"], "failed", "completed", timeout=60)
    assert ended["status"] == "failed"
    assert ended["status_reason"] == "exit code 126"
    assert "cannot apply the step resource limits" in ended["status_message"]


def test_a_step_printing_its_environment_leaks_no_credentials(cluster):
    """R38/R39: the step's env holds its task key only (no worker key, broker URL or server
    secrets), and what it prints of it is masked before it is stored."""
    queue = cluster.queue("env")
    cluster.start_worker(queue)
    token = "ghp_" + "Z9y8X7w6V5" * 4
    code = (
        "import json, os\n"
        "print('ENV', json.dumps(sorted(k for k in os.environ if k.startswith(('PIPELINES_', "
        "'CELERY_', 'DATABASE', 'SECRET')))))\n"
        "print('PIPELINES_API_KEY=' + os.environ['PIPELINES_API_KEY'])\n"
        "print('my key', os.environ['PIPELINES_API_KEY'])\n"
        f"print('GITHUB_TOKEN={token}')\n"
    )
    task = _create(cluster, "env dump", code=code)
    cluster.post(f"tasks/{task['id']}/enqueue/", {"queue": queue})
    assert cluster.wait_for_status(task["id"], "completed", "failed")["status"] == "completed"
    console = cluster.console_text(task["id"])
    names = json.loads(console.split("ENV ", 1)[1].splitlines()[0])
    assert not [n for n in names if n.startswith(("CELERY_", "DATABASE", "SECRET"))], names
    assert "PIPELINES_API_KEY=***" in console and "my key ***" in console
    assert "GITHUB_TOKEN=***" in console
    assert token not in console and cluster.server.worker_key not in console
    assert "pk_" not in console
