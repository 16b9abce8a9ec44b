"""The seed's pipeline-from-tasks workflow, run as a user would: the example's own scripts,
unmodified, against a real server, broker, server worker and step workers."""

import re
from pathlib import Path

import pytest
import requests

from tests.support import REPO, run_script

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
EXAMPLE = REPO / "examples" / "pipeline_from_tasks"
SCRIPTS = Path(__file__).parent / "scripts"
STEP_NAMES = {
    "stage_data": "pipeline step 1 dataset artifact",
    "stage_process": "pipeline step 2 process dataset",
    "stage_train": "pipeline step 3 train model",
}


@pytest.fixture(scope="module")
def seeded(cluster):
    """The three base tasks registered by running each step script once, and a worker on
    `default` (the queue the seed's controller names)."""
    env = cluster.server.sdk_env(MPLBACKEND="Agg")
    for script in ("step1_dataset_artifact.py", "step2_data_processing.py", "step3_train_model.py"):
        result = run_script(EXAMPLE / script, env, timeout=120)
        assert result.returncode == 0, result.stderr
    cluster.queues.add("default")
    cluster.start_worker("default", MPLBACKEND="Agg")
    bases = {step: _newest(cluster, name) for step, name in STEP_NAMES.items()}
    return env, bases


def _newest(cluster, name):
    rows = cluster.get("tasks/", name=name, project_name="examples", ordering="-created")
    return cluster.task(rows["results"][0]["id"])


def _run_of(cluster, controller_id):
    runs = cluster.get("pipelines/", page_size=100)["results"]
    run = next(r for r in runs if r["controller"] == controller_id)
    return cluster.get(f"pipelines/{run['id']}/")


def test_the_seed_controller_runs_the_pipeline_on_workers(cluster, seeded):
    env, bases = seeded
    for base in bases.values():
        assert base["status"] == "created"

    result = run_script(EXAMPLE / "pipeline_from_tasks.py", env, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip().endswith("done")
    # the run's page it prints exists (a browser without a session is sent to log in)
    page = re.search(r"started: (http\S+)", result.stdout).group(1)
    response = requests.get(page, allow_redirects=False, timeout=10)
    assert response.status_code == 302 and "/login/" in response.headers["Location"], page

    controller = _newest(cluster, "pipeline demo")
    assert controller["type"] == "controller" and controller["status"] == "completed"
    run = _run_of(cluster, controller["id"])
    assert run["status"] == "completed"
    nodes = {node["name"]: node for node in run["nodes"]}
    assert {n: nodes[n]["status"] for n in nodes} == {n: "completed" for n in STEP_NAMES}

    steps = {name: cluster.task(nodes[name]["task"]) for name in STEP_NAMES}
    for name, task in steps.items():
        # each step is a clone: a new task under the controller, the base left as it was
        assert task["id"] != bases[name]["id"] and task["parent"] == controller["id"]
        base_now = cluster.task(bases[name]["id"])
        assert base_now["status"] == "created"
        assert base_now["hyperparameters"] == bases[name]["hyperparameters"]
        assert base_now["script"] == bases[name]["script"]

    dataset = next(
        a
        for a in cluster.get(f"tasks/{steps['stage_data']['id']}/artifacts/")
        if a["name"] == "dataset"
    )
    process_params = steps["stage_process"]["hyperparameters"]["General"]
    assert process_params["dataset_url"]["value"] == dataset["url"]
    assert process_params["test_size"]["value"] == "0.25"
    # the script saw a float, cast back from the text the override was stored as
    console = cluster.console_text(steps["stage_process"]["id"])
    assert "'test_size': 0.25" in console and "'random_state': 42" in console
    processed = {a["name"] for a in cluster.get(f"tasks/{steps['stage_process']['id']}/artifacts/")}
    assert {"X_train", "X_test", "y_train", "y_test"} <= processed

    train_params = steps["stage_train"]["hyperparameters"]["General"]
    assert train_params["dataset_task_id"]["value"] == steps["stage_process"]["id"]
    assert "model trained & stored" in cluster.console_text(steps["stage_train"]["id"])
    plots = cluster.get(f"tasks/{steps['stage_train']['id']}/plots/")
    iris = {(p["title"], p["series"]): p["figure"] for p in plots}[("Iris Types", "plot")]
    # faithful: each point coloured by its class, the script's limits, its ticks hidden
    marker = iris["data"][0]["marker"]
    assert sorted(set(marker["color"])) == [0.0, 1.0, 2.0] and marker["colorscale"]
    assert iris["layout"]["xaxis"]["tickvals"] == [] and iris["layout"]["xaxis"]["range"]
    # step 3's joblib.dump(model, "model.pkl") is its output model
    models = cluster.get(f"tasks/{steps['stage_train']['id']}/models/")["output"]
    assert [(m["name"], m["filename"], m["framework"], m["state"]) for m in models] == [
        ("model", "model.pkl", "ScikitLearn", "ready")
    ]

    controller_plots = {
        (p["title"], p["series"]): p["figure"]
        for p in cluster.get(f"tasks/{controller['id']}/plots/")
    }
    flow = controller_plots[("Pipeline", "Execution Flow")]
    # (long entries are broken over lines so the box fits its card)
    hover = "\n".join(
        t.replace("<br>", "") for trace in flow["data"] for t in (trace.get("hovertext") or [])
    )
    for name in STEP_NAMES:
        assert name in hover
    assert "General/test_size: 0.25" in hover
    assert f"General/dataset_url: {dataset['url']}" in hover
    assert f"General/dataset_task_id: {steps['stage_process']['id']}" in hover
    assert ("Pipeline", "Execution Details") in controller_plots


def test_start_locally_runs_callbacks_here_and_a_skipped_step_skips_its_subtree(cluster, seeded):
    env, _ = seeded
    result = run_script(
        SCRIPTS / "controller_callbacks.py", env, timeout=300, args=["locally", "default"]
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "PRE stage_data []" in out
    assert "PRE stage_process ['General/dataset_url', 'General/test_size']" in out
    assert "PRE stage_train" in out
    assert re.search(r"POST stage_data [0-9a-f]{32}", out)
    controller_id = re.search(r"CONTROLLER ([0-9a-f]{32})", out).group(1)
    run = _run_of(cluster, controller_id)
    nodes = {node["name"]: node for node in run["nodes"]}
    assert nodes["stage_data"]["status"] == "completed"
    assert nodes["stage_process"]["status"] == "completed"
    assert nodes["stage_train"]["status"] == "skipped" and nodes["stage_train"]["task"] is None
    assert run["status"] == "completed"
    assert cluster.task(controller_id)["status"] == "completed"


def test_start_with_callbacks_enqueues_the_controller_on_services_like_clearml(cluster, seeded):
    env, _ = seeded
    services = cluster.queue("services")
    cluster.start_worker(services)
    result = run_script(
        SCRIPTS / "controller_callbacks.py", env, timeout=120, args=["start", "default", services]
    )
    # on the dev machine start() registers the controller, enqueues it and exits 0
    assert result.returncode == 0, result.stderr
    assert "CONTROLLER" not in result.stdout
    controller = _newest(cluster, "pipeline callbacks start")
    done = cluster.wait_for_status(controller["id"], "completed", "failed", timeout=240)
    assert done["status"] == "completed", cluster.console_text(controller["id"])[-2000:]
    console = cluster.console_text(controller["id"])
    assert "PRE stage_data" in console and "POST stage_process" in console
    run = _run_of(cluster, controller["id"])
    assert {n["name"]: n["status"] for n in run["nodes"]}["stage_train"] == "skipped"
