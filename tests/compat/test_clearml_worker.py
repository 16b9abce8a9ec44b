"""Our own step worker (`pipelines worker`) running tasks created by the official `clearml` SDK:
the script gets CLEARML_TASK_ID and the task's own key, runs with PIPELINES_CLEARML_PYTHON
(the environment that has `clearml`), attaches and reports through the SDK, and its console
and exit code are captured and reported like any step's."""

import shutil

import pytest

from tests.compat.conftest import SEED, clearml_keys
from tests.support import start_cluster

pytestmark = [pytest.mark.compat, pytest.mark.e2e]

SCRIPT = "secret_parameter_check.py"
MASK = "********"


@pytest.fixture(scope="module")
def world(tmp_path_factory, clearml_python):
    """A cluster (server, broker, server worker) and one step worker whose ClearML tasks run
    with the SDK's interpreter."""
    root = tmp_path_factory.mktemp("clearml-worker")
    cluster = start_cluster(root / "cluster")
    try:
        queue = cluster.queue("clearml")
        cluster.start_worker(queue, PIPELINES_CLEARML_PYTHON=str(clearml_python))
        scripts = root / "scripts"
        scripts.mkdir()
        shutil.copy(SEED / SCRIPT, scripts / SCRIPT)
        access, secret = clearml_keys(cluster.server.api_key)
        env = {
            **cluster.worker_env(),
            "HOME": str(root / "home"),
            "CLEARML_API_HOST": f"{cluster.server.url}/clearml-api",
            "CLEARML_FILES_HOST": f"{cluster.server.url}/clearml-files",
            "CLEARML_WEB_HOST": cluster.server.url,
            "CLEARML_API_ACCESS_KEY": access,
            "CLEARML_API_SECRET_KEY": secret,
            "CHECK_PROJECT": "worker checks",
            "CHECK_QUEUE": queue,
        }
        for name in ("PIPELINES_API_KEY", "PIPELINES_API_URL", "CELERY_BROKER_URL"):
            env.pop(name)
        yield cluster, clearml_python, scripts, env
    finally:
        cluster.stop()


def _enqueue_with_the_sdk(world, name: str, **env) -> str:
    """`python secret_parameter_check.py` on a dev machine: registers the task and enqueues
    it on the worker's queue (execute_remotely), then exits."""
    import subprocess

    cluster, python, scripts, base_env = world
    result = subprocess.run(
        [str(python), SCRIPT],
        cwd=scripts,
        env={**base_env, "CHECK_NAME": name, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    rows = cluster.get("tasks/", page_size=100)["results"]
    matching = [row for row in rows if row["name"] == name]
    assert len(matching) == 1, [(r["name"], r["status"]) for r in rows]
    return matching[0]["id"]


def test_a_clearml_task_runs_on_our_worker_and_completes(world):
    cluster = world[0]
    # given a task created and enqueued by the official SDK
    task_id = _enqueue_with_the_sdk(world, "clearml task on our worker")
    # when our step worker runs it
    task = cluster.wait_for_status(task_id, "completed", "failed", timeout=120)
    console = cluster.console_text(task_id)
    # then the script ran attached to its own task, through the SDK, and completed
    assert task["status"] == "completed", (task["status_reason"], console[-3000:])
    assert f"running as CLEARML_TASK_ID={task_id} task={task_id}" in console
    # its console was captured by the worker, and the SDK's report reached the server
    assert "password intact" in console
    scalars = cluster.get(f"tasks/{task_id}/scalars/")
    assert scalars["check"]["answer"]["y"] == [42.0], scalars
    # it read its real password with the task key, while others read it masked
    assert task["hyperparameters"]["General"]["db_password"]["value"] == MASK
    assert task["hyperparameters"]["General"]["fail"]["value"] == "False"


def test_a_failing_clearml_task_fails_with_its_exit_code(world):
    cluster = world[0]
    task_id = _enqueue_with_the_sdk(world, "failing clearml task on our worker", CHECK_FAIL="1")
    task = cluster.wait_for_status(task_id, "completed", "failed", timeout=120)
    console = cluster.console_text(task_id)
    assert task["status"] == "failed", console[-3000:]
    assert task["status_reason"] == "exit code 3", task["status_reason"]
    assert "failing on purpose" in console
    assert "password intact" in console


def test_a_worker_without_a_clearml_interpreter_refuses_a_clearml_task(world):
    cluster = world[0]
    # given a worker like `pipelines up` starts: no PIPELINES_CLEARML_PYTHON, and its own
    # interpreter has no `clearml` package
    queue = cluster.queue("no-clearml")
    cluster.start_worker(queue)
    # when the SDK enqueues a ClearML task on its queue
    task_id = _enqueue_with_the_sdk(world, "clearml task on a plain worker", CHECK_QUEUE=queue)
    task = cluster.wait_for_status(task_id, "completed", "failed", timeout=120)
    console = cluster.console_text(task_id)
    # then the worker did not run it: the task failed saying what to configure
    assert task["status"] == "failed", console[-3000:]
    assert "PIPELINES_CLEARML_PYTHON" in task["status_reason"], task["status_reason"]
    assert "ModuleNotFoundError" not in console, console[-3000:]
