"""Conformance: the seed's pipeline written with the official `clearml` SDK (2.1.12), run
unmodified against our server, with our ClearML runners executing the queued tasks.

Both pipelines (the seed's, and one with a broken step) are launched up front and run side
by side, so the whole module stays within a few minutes on a 2-core machine.
"""

import hashlib
import io
import re

import numpy as np
import pytest
import requests

from tests.compat.conftest import clearml_keys
from tests.support import start_process, wait_until

pytestmark = [pytest.mark.compat, pytest.mark.e2e]

STEPS = ("step1_dataset_artifact.py", "step2_data_processing.py", "step3_train_model.py")
PIPELINES = ("pipeline_from_tasks.py", "pipeline_broken_step.py", "pipeline_secret_step.py")
PIPELINE = "pipeline demo"
BROKEN = "pipeline broken step"
SECRET = "pipeline secret step"
MASK = "********"
TERMINAL = ("completed", "failed", "stopped")


@pytest.fixture(scope="module")
def launched(clearml_world):
    """Register the three base tasks, then start both pipelines (each `start()` enqueues its
    controller on `services` and exits, as on a dev machine)."""
    world = clearml_world
    # Independent scripts, so each group runs side by side (the SDK takes ~10 s per run).
    for group in ((*STEPS, "secret_parameter_check.py"), PIPELINES):
        for script, result in zip(group, world.run_all(group), strict=True):
            assert result.returncode == 0, f"{script}:\n{result.stdout}\n{result.stderr}"
            # execute_remotely() / start() ended the local process after registering
            assert "continuing execution remotely" in result.stdout + result.stderr, script
    return world


def _tasks(world, **params) -> list[dict]:
    response = world.server.api().get(
        f"{world.server.url}/api/v1/tasks/", params={"page_size": 500, **params}, timeout=30
    )
    assert response.ok, response.text
    return response.json()["results"]


def _controller(world, name: str) -> dict:
    rows = [t for t in _tasks(world, type="controller") if t["name"] == name]
    assert len(rows) == 1, rows
    return rows[0]


def _finished(world, name: str, timeout: float = 200) -> dict:
    def done():
        task = _controller(world, name)
        return task if task["status"] in TERMINAL else None

    try:
        return wait_until(done, timeout=timeout, interval=1.0)
    except AssertionError as error:
        logs = "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted((world.root / "logs").glob("*.log"))
        )
        raise AssertionError(f"{name} did not finish: {_overview(world)}\n{logs}") from error


def _overview(world) -> list:
    return [(t["name"], t["status"], t["status_reason"]) for t in _tasks(world)]


def _console(world, task_id: str) -> str:
    lines = world.server.api().get(
        f"{world.server.url}/api/v1/tasks/{task_id}/console/", params={"limit": 10_000}
    )
    return "\n".join(line["text"] for line in lines.json())


def test_seed_pipeline_completes_with_its_steps_artifacts_and_plot(launched):
    world = launched
    # given the seed's pipeline started with the official SDK, when our runners execute it
    controller = _finished(world, PIPELINE)
    # then the controller ends completed, in the SDK's hidden pipeline project
    assert controller["status"] == "completed", (controller, _console(world, controller["id"]))
    assert controller["project_name"] == f"examples/.pipelines/{PIPELINE}"
    steps = {t["name"]: t for t in _tasks(world, parent=controller["id"])}
    assert set(steps) == {"stage_data", "stage_process", "stage_train"}
    for step in steps.values():
        assert step["status"] == "completed", (step["name"], _console(world, step["id"]))
        assert step["project_name"] == controller["project_name"]
    # the overrides reached the clones (cast back by the SDK in the steps)
    process = world.server.api().get(
        f"{world.server.url}/api/v1/tasks/{steps['stage_process']['id']}/"
    )
    general = process.json()["hyperparameters"]["General"]
    assert general["test_size"]["value"] == "0.25"
    assert general["dataset_url"]["value"].startswith(f"{world.server.url}/clearml-files/")
    # the base tasks stay drafts in `examples`, holding the whole script
    bases = [t for t in _tasks(world, project_name="examples") if t["status"] == "created"]
    assert {t["name"] for t in bases} >= {
        "pipeline step 1 dataset artifact",
        "pipeline step 2 process dataset",
        "pipeline step 3 train model",
    }
    # artifacts: listed as ours, downloadable from our artifact URLs and the ClearML file server
    expected = {
        "stage_data": {"dataset"},
        "stage_process": {"X_train", "X_test", "y_train", "y_test"},
    }
    for step_name, names in expected.items():
        task_id = steps[step_name]["id"]
        rows = (
            world.server.api().get(f"{world.server.url}/api/v1/tasks/{task_id}/artifacts/").json()
        )
        by_name = {row["name"]: row for row in rows}
        assert set(by_name) == names
        documents = {
            a["key"]: a
            for a in world.compat("tasks.get_by_id", task=task_id)["task"]["execution"]["artifacts"]
        }
        for name in names:
            row = by_name[name]
            assert row["state"] == "ready", row
            ours = world.server.api().get(row["url"], timeout=30)
            assert ours.ok, (row["url"], ours.status_code)
            assert hashlib.sha256(ours.content).hexdigest() == row["sha256"]
            theirs = requests.get(
                documents[name]["uri"],
                headers={"Authorization": f"Bearer {world.server.api_key}"},
                timeout=30,
            )
            assert theirs.ok and theirs.content == ours.content
            if step_name == "stage_process":
                assert np.load(io.BytesIO(ours.content))[name].shape[0] > 0
    # the pipeline plot the controller reported is a Plot of the controller
    plots = (
        world.server.api().get(f"{world.server.url}/api/v1/tasks/{controller['id']}/plots/").json()
    )
    flow = [p for p in plots if (p["title"], p["series"]) == ("Pipeline", "Execution Flow")]
    assert len(flow) == 1, [(p["title"], p["series"]) for p in plots]
    assert flow[0]["figure"]["data"][0]["type"] == "sankey"
    # each step's console was captured by the runner, and step 3's matplotlib figure reported
    assert "Uploading process dataset" in _console(world, steps["stage_process"]["id"])
    train = world.server.api().get(
        f"{world.server.url}/api/v1/tasks/{steps['stage_train']['id']}/plots/"
    )
    assert any(p["title"] == "Iris Types" for p in train.json())
    assert "model trained & stored" in _console(world, steps["stage_train"]["id"])
    # and the trained model was registered for step 3
    models = world.compat("models.get_all", task=[steps["stage_train"]["id"]])["models"]
    assert models and models[0]["uri"].endswith("model.pkl")


def test_a_failing_step_fails_the_pipeline_and_its_child_is_never_created(launched):
    world = launched
    # given a pipeline whose second step cannot find its dataset
    controller = _finished(world, BROKEN)
    # then the pipeline ends failed, even though its process exited 0 afterwards (the
    # runner's `completed` after the controller's own `failed` is refused, as on ClearML)
    assert controller["status"] == "failed", (controller, _console(world, controller["id"]))
    steps = {t["name"]: t for t in _tasks(world, parent=controller["id"])}
    assert steps["stage_data"]["status"] == "completed"
    assert steps["stage_process"]["status"] == "failed"
    assert "exit code" in steps["stage_process"]["status_reason"]
    assert "stage_train" not in steps
    assert "Traceback" in _console(world, steps["stage_process"]["id"])


def _mirrored_run(world, controller_id: str) -> dict:
    """Our pipeline run for a ClearML controller, once it has followed the controller's end
    (the mirror is refreshed right after the controller's own status change commits)."""
    api = world.server.api()

    def ended():
        rows = api.get(f"{world.server.url}/api/v1/pipelines/", params={"page_size": 100}).json()
        rows = [r for r in rows["results"] if r["controller"] == controller_id]
        assert len(rows) <= 1, rows
        return rows[0] if rows and rows[0]["status"] in TERMINAL else None

    run = wait_until(ended, timeout=30, interval=0.2, message="the mirrored run to end")
    return api.get(f"{world.server.url}/api/v1/pipelines/{run['id']}/").json()


def _dashboard(world) -> requests.Session:
    """A browser-like session logged in to the dashboard as the admin."""
    session = requests.Session()
    form = session.get(f"{world.server.url}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    response = session.post(
        f"{world.server.url}/login/",
        data={"username": "admin", "password": world.server.password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{world.server.url}/login/"},
        timeout=30,
    )
    assert response.ok and "/login/" not in response.url, response.url
    return session


def test_sdk_pipelines_are_mirrored_as_our_pipeline_runs(launched):
    world = launched
    # given the seed's pipeline completed under its own ClearML controller
    controller = _finished(world, PIPELINE)
    steps = {t["name"]: t for t in _tasks(world, parent=controller["id"])}
    # then it is one of our pipeline runs, driven by that controller
    run = _mirrored_run(world, controller["id"])
    assert (run["driver"], run["status"]) == ("clearml", "completed"), run
    # with one node per node of the controller's DAG, each linked to the step task it ran
    nodes = {node["name"]: node for node in run["nodes"]}
    assert list(nodes) == ["stage_data", "stage_process", "stage_train"]
    for name, node in nodes.items():
        assert (node["task"], node["status"]) == (steps[name]["id"], "completed"), node
    assert {s["name"]: s["parents"] for s in run["steps"]} == {
        "stage_data": [],
        "stage_process": ["stage_data"],
        "stage_train": ["stage_process"],
    }
    # the controller's own pipeline plot is still the one it reported (not ours)
    plots = world.server.api().get(f"{world.server.url}/api/v1/tasks/{controller['id']}/plots/")
    flow = [p for p in plots.json() if (p["title"], p["series"]) == ("Pipeline", "Execution Flow")]
    assert [p["figure"]["data"][0]["type"] for p in flow] == ["sankey"]
    # and the dashboard lists it and draws its DAG, each node opening its step's task
    dashboard = _dashboard(world)
    listing = dashboard.get(f"{world.server.url}/pipelines/", timeout=30)
    assert listing.status_code == 200 and f"/pipelines/runs/{run['id']}/" in listing.text
    page = dashboard.get(f"{world.server.url}/pipelines/runs/{run['id']}/", timeout=30)
    assert page.status_code == 200
    for name, step in steps.items():
        assert name in page.text and step["id"] in page.text
    state = dashboard.get(f"{world.server.url}/pipelines/runs/{run['id']}/state/", timeout=30)
    drawn = {  # each step's marker carries [step name, task id]
        pair[1]
        for trace in state.json()["figure"]["data"]
        if trace.get("mode") == "markers"
        for pair in trace.get("customdata") or []
    }
    assert drawn == {step["id"] for step in steps.values()}


def test_a_failed_sdk_pipeline_is_mirrored_with_its_failed_and_unrun_steps(launched):
    world = launched
    controller = _finished(world, BROKEN)
    steps = {t["name"]: t for t in _tasks(world, parent=controller["id"])}
    run = _mirrored_run(world, controller["id"])
    assert (run["driver"], run["status"]) == ("clearml", "failed"), run
    nodes = {node["name"]: node for node in run["nodes"]}
    assert (nodes["stage_data"]["task"], nodes["stage_data"]["status"]) == (
        steps["stage_data"]["id"],
        "completed",
    )
    assert (nodes["stage_process"]["task"], nodes["stage_process"]["status"]) == (
        steps["stage_process"]["id"],
        "failed",
    )
    # the step the controller never created did not run
    assert (nodes["stage_train"]["task"], nodes["stage_train"]["status"]) == (None, "skipped")


def test_a_remote_step_reads_its_secret_parameter_unmasked_and_others_see_a_mask(launched):
    world = launched
    # given a pipeline whose step has a secret-looking parameter (db_password); its
    # controller reads the step's clone masked, overrides `note` and saves it whole
    controller = _finished(world, SECRET)
    steps = {t["name"]: t for t in _tasks(world, parent=controller["id"])}
    check = steps["check"]
    console = _console(world, check["id"])
    # then the step, run by the runner's key, read the real password and the override
    assert controller["status"] == "completed", (controller, console)
    assert check["status"] == "completed", console
    assert "password intact" in console and "note: 'set by the pipeline'" in console
    # and once it has ended, any other caller reads the value masked
    doc = world.compat("tasks.get_by_id", task=check["id"])["task"]
    assert doc["hyperparams"]["General"]["db_password"]["value"] == MASK
    assert doc["hyperparams"]["General"]["note"]["value"] == "set by the pipeline"
    params = world.compat("tasks.get_hyper_params", tasks=[check["id"]])["params"][0]
    assert {p["name"]: p["value"] for p in params["hyperparams"]}["db_password"] == MASK


def test_the_real_clearml_agent_runs_the_seed_pipeline_too(launched, clearml_agent):
    world = launched
    # given our runners are done and two clearml-agent daemons (offline: they run tasks
    # with the prepared interpreter instead of building environments) serve the queues
    _finished(world, PIPELINE)
    _finished(world, BROKEN)
    world.stop_runners()
    access, secret = clearml_keys(world.server.worker_key)
    env = {
        **world.env,
        "CLEARML_API_ACCESS_KEY": access,
        "CLEARML_API_SECRET_KEY": secret,
        "CLEARML_AGENT_SKIP_PYTHON_ENV_INSTALL": "1",
        "CLEARML_AGENT_SKIP_PIP_VENV_INSTALL": str(world.python),
    }
    agents = [
        start_process(
            f"agent-{queue}",
            [str(clearml_agent), "daemon", "--queue", queue, "--foreground"],
            {**env, "CLEARML_WORKER_ID": f"agent-{queue}"},
            world.root / "logs" / f"agent-{queue}.log",
            cwd=world.root,
        )
        for queue in ("services", "default")
    ]
    try:
        # when the seed's controller runs a second time (the SDK names it "... #2")
        result = world.run("pipeline_from_tasks.py")
        assert result.returncode == 0, result.stderr
        controller = _finished(world, f"{PIPELINE} #2")
    finally:
        for agent in agents:
            agent.stop()
    # then it completes as under our runner, its steps run by the agents
    assert controller["status"] == "completed", (controller, _console(world, controller["id"]))
    steps = {t["name"]: t for t in _tasks(world, parent=controller["id"])}
    assert {name: t["status"] for name, t in steps.items()} == {
        "stage_data": "completed",
        "stage_process": "completed",
        "stage_train": "completed",
    }
    assert "model trained & stored" in _console(world, steps["stage_train"]["id"])
