"""ClearML's own example pipelines (tests/compat/clearml_examples/, unmodified) run by the
official SDK against our server, their controller and steps executed by our own step workers
(`pipelines worker` on `services` and on `default`, with the SDK's interpreter), and shown on
our pipeline run page as the controller ran them."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.compat.conftest import clearml_keys, seed_iris_cache
from tests.support import start_cluster, start_process, wait_until

pytestmark = [pytest.mark.compat, pytest.mark.e2e]

EXAMPLES = Path(__file__).parent / "clearml_examples"
TERMINAL = ("completed", "failed", "stopped")


@pytest.fixture(scope="module")
def world(tmp_path_factory, clearml_python):
    """A cluster with its own broker (the examples use the queues `services` and `default`
    by name) and one step worker per queue, so a controller never waits for its own slot."""
    from pipelines.launcher.embedded_redis import EmbeddedRedis

    root = tmp_path_factory.mktemp("clearml-examples")
    broker = EmbeddedRedis(root / "broker", log_path=root / "redis.log").start()
    cluster = start_cluster(root / "cluster", broker=broker)
    try:
        home = root / "home"
        seed_iris_cache(home)
        workers = [
            cluster.start_worker(
                queue, PIPELINES_CLEARML_PYTHON=str(clearml_python), HOME=str(home)
            )
            for queue in ("services", "default")
        ]
        scripts = root / "scripts"
        shutil.copytree(EXAMPLES, scripts)
        access, secret = clearml_keys(cluster.server.api_key)
        env = {
            **cluster.worker_env(),
            "HOME": str(home),
            "CLEARML_API_HOST": f"{cluster.server.url}/clearml-api",
            "CLEARML_FILES_HOST": f"{cluster.server.url}/clearml-files",
            "CLEARML_WEB_HOST": cluster.server.url,
            "CLEARML_API_ACCESS_KEY": access,
            "CLEARML_API_SECRET_KEY": secret,
        }
        for name in ("PIPELINES_API_KEY", "PIPELINES_API_URL", "CELERY_BROKER_URL"):
            env.pop(name)
        yield cluster, clearml_python, scripts, env, workers
    finally:
        cluster.stop()


def _run_example(world, script: str, timeout: float = 200) -> subprocess.CompletedProcess:
    cluster, python, scripts, env, _ = world
    try:
        return subprocess.run(
            [str(python), script],
            cwd=scripts,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise AssertionError(
            f"{script} did not exit:\n{error.stdout}\n{error.stderr}\n{_overview(cluster)}"
        ) from error


def _tasks(cluster, **params) -> list[dict]:
    return cluster.get("tasks/", page_size=500, **params)["results"]


def _overview(cluster) -> list:
    return [(t["name"], t["status"], t["status_reason"]) for t in _tasks(cluster)]


def _finished_controller(cluster, name: str, timeout: float = 300, exclude=()) -> dict:
    def done():
        rows = [
            t
            for t in _tasks(cluster, type="controller")
            if t["name"] == name and t["id"] not in exclude
        ]
        return rows[0] if rows and rows[0]["status"] in TERMINAL else None

    try:
        return wait_until(done, timeout=timeout, interval=1.0)
    except AssertionError as error:
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted((cluster.data_dir / "logs").glob("*.log"))
        )
        raise AssertionError(f"{name} did not finish: {_overview(cluster)}\n{logs}") from error


def _mirrored_run(cluster, controller_id: str) -> dict:
    def ended():
        rows = cluster.get("pipelines/", page_size=100)["results"]
        rows = [r for r in rows if r["controller"] == controller_id]
        return rows[0] if rows and rows[0]["status"] in TERMINAL else None

    run = wait_until(ended, timeout=30, interval=0.2, message="the mirrored run to end")
    return cluster.get(f"pipelines/{run['id']}/")


def test_pipeline_from_functions_runs_on_our_workers_and_is_shown_as_run(world):
    cluster = world[0]
    # given ClearML's function pipeline example, started from a dev machine (`pipe.start()`
    # enqueues its controller on `services` and exits)
    result = _run_example(world, "pipeline_from_functions.py")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    # when our step workers run the controller and the steps it creates
    controller = _finished_controller(cluster, "Pipeline demo")
    console = cluster.console_text(controller["id"])
    # then the controller completed, having created each step as its own child
    assert controller["status"] == "completed", (controller["status_reason"], console[-4000:])
    steps = {t["name"]: t for t in _tasks(cluster, parent=controller["id"])}
    assert sorted(steps) == ["step_one", "step_three", "step_two"], (_overview(cluster), console)
    assert {name: t["status"] for name, t in steps.items()} == dict.fromkeys(steps, "completed")
    assert "403" not in console, console[-4000:]
    # and the run page shows each freshly run step as run, not as reused from a cache
    run = _mirrored_run(cluster, controller["id"])
    assert (run["driver"], run["status"]) == ("clearml", "completed"), run
    nodes = {node["name"]: node for node in run["nodes"]}
    assert {name: (n["task"], n["status"]) for name, n in nodes.items()} == {
        name: (steps[name]["id"], "completed") for name in steps
    }
    # and the pipeline link the SDK printed opens that run's page
    link = re.search(r"ClearML pipeline page: (\S+)", console).group(1)
    page = _dashboard(cluster).get(link, timeout=30)
    assert page.status_code == 200, (link, page.status_code)
    assert page.url.rstrip("/").endswith(f"/pipelines/runs/{run['id']}"), page.url


def test_a_rerun_of_pipeline_from_functions_reuses_its_cached_steps_and_shows_them_cached(world):
    cluster = world[0]
    first = _finished_controller(cluster, "Pipeline demo")
    steps = {t["name"]: t for t in _tasks(cluster, parent=first["id"])}
    # given the first run completed, a second run of the same pipeline reuses its steps
    # (cache_executed_step=True), and only then are they shown as cached
    result = _run_example(world, "pipeline_from_functions.py")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    second = _finished_controller(cluster, "Pipeline demo #2")
    assert second["status"] == "completed", cluster.console_text(second["id"])[-4000:]
    nodes = {node["name"]: node for node in _mirrored_run(cluster, second["id"])["nodes"]}
    assert {name: (n["task"], n["status"]) for name, n in nodes.items()} == {
        name: (steps[name]["id"], "cached") for name in steps
    }


def test_pipeline_from_decorator_runs_remotely_on_our_workers(world):
    cluster, _, scripts, _, _ = world
    # given ClearML's decorator example with its one local-run line swapped for the queue
    # its own comment names (the remote variant: controller on `services`, steps on `default`)
    source = (scripts / "pipeline_from_decorator.py").read_text()
    local = "    PipelineDecorator.run_locally()\n"
    assert source.count(local) == 1
    remote = source.replace(local, "    PipelineDecorator.set_default_execution_queue('default')\n")
    (scripts / "pipeline_from_decorator_remote.py").write_text(remote)
    result = _run_example(world, "pipeline_from_decorator_remote.py")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    controller = _finished_controller(cluster, "custom pipeline logic")
    console = cluster.console_text(controller["id"])
    assert controller["status"] == "completed", (controller["status_reason"], console[-4000:])
    assert "Accuracy=" in console, console[-4000:]
    steps = {t["name"]: t for t in _tasks(cluster, parent=controller["id"])}
    assert sorted(steps) == ["step_four", "step_one", "step_three", "step_two"], _overview(cluster)
    nodes = {node["name"]: node for node in _mirrored_run(cluster, controller["id"])["nodes"]}
    assert {name: (n["task"], n["status"]) for name, n in nodes.items()} == {
        name: (steps[name]["id"], "completed") for name in steps
    }


def test_pipeline_from_decorator_run_locally(world):
    cluster = world[0]
    # given ClearML's decorator example as it is: PipelineDecorator.run_locally()
    result = _run_example(world, "pipeline_from_decorator.py")
    # then the controller and its steps ran on this machine and completed
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "Accuracy=" in result.stdout, result.stdout[-4000:]
    controller = _finished_controller(cluster, "custom pipeline logic #2")
    assert controller["status"] == "completed", controller["status_reason"]
    # (its steps reused from the remote run's cache: cache=True on every component)
    run = _mirrored_run(cluster, controller["id"])
    assert run["status"] == "completed", run
    assert {n["status"] for n in run["nodes"]} <= {"completed", "cached"}, run["nodes"]


def test_pipeline_from_tasks_runs_on_our_workers(world):
    cluster = world[0]
    # given ClearML's "pipeline from tasks" example: three scripts register draft base tasks
    # (execute_remotely), then the controller clones and enqueues them
    for script in ("step1_dataset_artifact.py", "step2_data_processing.py", "step3_train_model.py"):
        result = _run_example(world, script)
        assert result.returncode == 0, f"{script}:\n{result.stdout}\n{result.stderr}"
    earlier = {t["id"] for t in _tasks(cluster, type="controller")}
    result = _run_example(world, "pipeline_from_tasks.py")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    name = re.search(r"created new task id=([0-9a-f]{32})", result.stdout + result.stderr)
    controller = cluster.task(name.group(1))
    controller = _finished_controller(cluster, controller["name"], exclude=earlier)
    console = cluster.console_text(controller["id"])
    # then our workers ran the controller and its three clones to completion
    assert controller["status"] == "completed", (controller["status_reason"], console[-4000:])
    steps = {t["name"]: t for t in _tasks(cluster, parent=controller["id"])}
    assert {n: t["status"] for n, t in steps.items()} == dict.fromkeys(
        ["stage_data", "stage_process", "stage_train"], "completed"
    ), _overview(cluster)
    nodes = {node["name"]: node for node in _mirrored_run(cluster, controller["id"])["nodes"]}
    assert {n: (node["task"], node["status"]) for n, node in nodes.items()} == {
        n: (steps[n]["id"], "completed") for n in steps
    }


def _archive_steps(cluster, controller_id: str) -> None:
    """Archived tasks are never reused from the cache: the next run runs its steps afresh."""
    steps = [step["id"] for step in _tasks(cluster, parent=controller_id)]
    response = requests.post(
        f"{cluster.server.url}/clearml-api/v2.23/tasks.archive",
        json={"tasks": steps},
        headers={"Authorization": f"Bearer {cluster.server.api_key}"},
        timeout=30,
    )
    assert response.json()["meta"]["result_code"] == 200, response.text


def test_pipeline_from_functions_under_clearml_agent_is_shown_as_run(world, clearml_agent):
    cluster, python, _, env, workers = world
    # given the first run's steps archived (so none is reused) and our step workers replaced by
    # two clearml-agent daemons sharing one worker key (offline: the prepared interpreter)
    first = _finished_controller(cluster, "Pipeline demo")
    _archive_steps(cluster, first["id"])
    for worker in workers:
        worker.stop()
    access, secret = clearml_keys(cluster.server.worker_key)
    agent_env = {
        **env,
        "CLEARML_API_ACCESS_KEY": access,
        "CLEARML_API_SECRET_KEY": secret,
        "CLEARML_AGENT_SKIP_PYTHON_ENV_INSTALL": "1",
        "CLEARML_AGENT_SKIP_PIP_VENV_INSTALL": str(python),
    }
    agents = [
        start_process(
            f"agent-{queue}",
            [str(clearml_agent), "daemon", "--queue", queue, "--foreground"],
            {**agent_env, "CLEARML_WORKER_ID": f"{cluster.prefix}-agent-{queue}"},
            cluster.data_dir / "logs" / f"agent-{queue}.log",
            cwd=cluster.data_dir,
        )
        for queue in ("services", "default")
    ]
    earlier = {t["id"] for t in _tasks(cluster, type="controller")}
    try:
        # when the example runs again, its controller and steps run by the agents
        result = _run_example(world, "pipeline_from_functions.py")
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        found = re.search(r"created new task id=([0-9a-f]{32})", result.stdout + result.stderr)
        name = cluster.task(found.group(1))["name"]
        controller = _finished_controller(cluster, name, exclude=earlier)
    finally:
        for agent in agents:
            agent.stop()
    console = cluster.console_text(controller["id"])
    assert controller["status"] == "completed", (controller["status_reason"], console[-4000:])
    # then each step the controller created was moved under it (Task.set_parent), whichever
    # task the shared agent key was running when it created the step
    steps = {t["name"]: t for t in _tasks(cluster, parent=controller["id"])}
    assert sorted(steps) == ["step_one", "step_three", "step_two"], _overview(cluster)
    assert {name: t["status"] for name, t in steps.items()} == dict.fromkeys(steps, "completed")
    # and our run page shows them as run afresh, not as cached
    nodes = {node["name"]: node for node in _mirrored_run(cluster, controller["id"])["nodes"]}
    assert {name: (n["task"], n["status"]) for name, n in nodes.items()} == {
        name: (steps[name]["id"], "completed") for name in steps
    }


def _dashboard(cluster) -> requests.Session:
    session = requests.Session()
    login = session.get(f"{cluster.server.url}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    response = session.post(
        f"{cluster.server.url}/login/",
        data={
            "username": "admin",
            "password": cluster.server.password,
            "csrfmiddlewaretoken": token,
        },
        headers={"Referer": f"{cluster.server.url}/login/"},
        timeout=30,
    )
    assert response.ok and "/login/" not in response.url, response.url
    return session


def test_reported_results_read_back_through_the_sdk(world):
    cluster = world[0]
    # given a script that reports through the SDK and reads its results back
    result = _run_example(world, "reporting_check.py")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    got = json.loads(line.removeprefix("RESULT "))
    # then the last metrics carry the real lowest and highest values, not the last one
    assert (got["last"]["last"], got["last"]["min"], got["last"]["max"]) == (3.0, 1.0, 9.0)
    # the reported series, single values and debug samples come back
    assert got["scalars"] == {"name": "train", "x": [0, 1, 2, 3], "y": [5.0, 1.0, 9.0, 3.0]}
    assert got["single"] == {"accuracy": 0.75}
    assert len(got["image"]) == 1
    image = requests.get(
        got["image"][0],
        headers={"Authorization": f"Bearer {cluster.server.api_key}"},
        timeout=30,
    )
    assert image.status_code == 200 and image.content, image.status_code
    # media reported only by URL is kept, every one of them
    assert got["pages"] == [f"https://example.com/p{n}.html" for n in range(3)]
    assert got["clips"] == [f"https://example.com/c{n}.mp4" for n in range(3)]
    # and our Debug samples tab lists all seven
    samples = cluster.get(f"tasks/{got['id']}/samples/since/", seq=0)["samples"]
    assert len(samples) == 7, samples
    # and the results page link the SDK prints opens our task page
    page = _dashboard(cluster).get(got["results_page"], timeout=30)
    assert page.status_code == 200 and got["id"] in page.text, (page.url, samples)
    assert page.url.rstrip("/").endswith(f"/tasks/{got['id']}"), page.url
