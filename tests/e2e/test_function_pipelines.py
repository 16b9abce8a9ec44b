"""Pipelines from functions and from decorators, as ClearML users write them: the examples
run end to end on real workers (and as subprocesses of their controller), callbacks see
resolved values, independent components run at the same time, cached steps are reused."""

import re
from pathlib import Path

import pytest

from tests.support import REPO, run_script, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.execution]
EXAMPLES = REPO / "examples"
SCRIPTS = Path(__file__).parent / "scripts"
HANDSHAKE_FILES = ("left", "right")


@pytest.fixture(scope="module")
def queue(cluster):
    """The queue the examples name, `default`, with a worker on it."""
    cluster.queues.add("default")
    cluster.start_worker("default", MPLBACKEND="Agg")
    return "default"


def _env(cluster, **extra):
    return cluster.server.sdk_env(MPLBACKEND="Agg", PIPELINES_ALLOW_PICKLE="1", **extra)


def _newest_controller(cluster, name):
    rows = cluster.get("tasks/", name=name, type="controller", ordering="-created")["results"]
    return rows[0]


def _run_of(cluster, controller_id):
    runs = cluster.get("pipelines/", page_size=100)["results"]
    run = next(r for r in runs if r["controller"] == controller_id)
    return cluster.get(f"pipelines/{run['id']}/")


def _ended(cluster, run_id, timeout=240):
    def ended():
        run = cluster.get(f"pipelines/{run_id}/")
        return run if run["status"] != "running" else None

    return wait_until(ended, timeout=timeout, interval=0.25, message=f"run {run_id} to end")


def _nodes(run):
    return {node["name"]: node for node in run["nodes"]}


def _artifacts(cluster, task_id):
    return {a["name"]: a for a in cluster.get(f"tasks/{task_id}/artifacts/")}


def test_the_functions_example_runs_on_workers_and_shows_each_function(cluster, queue):
    result = run_script(
        EXAMPLES / "pipeline_from_functions" / "pipeline_from_functions.py",
        _env(cluster),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    controller = _newest_controller(cluster, "Pipeline demo")
    run = _ended(cluster, _run_of(cluster, controller["id"])["id"])
    nodes = _nodes(run)
    assert run["status"] == "completed", {n: (v["status"], v["message"]) for n, v in nodes.items()}
    assert cluster.task(controller["id"])["status"] == "completed"
    steps = {step["name"]: step for step in run["steps"]}
    # parents come from the kwargs' references, not from the script
    assert steps["step_two"]["parents"] == ["step_one"]
    assert steps["step_three"]["parents"] == ["step_two"]
    assert steps["step_two"]["function"] == {
        "name": "step_two",
        "kwargs": {"data_frame": "${step_one.data_frame}", "test_size": 0.2, "random_state": 42},
        "returns": ["processed_data"],
        "parameters": ["data_frame", "test_size", "random_state"],
    }

    one, two, three = (
        cluster.task(nodes[n]["task"]) for n in ("step_one", "step_two", "step_three")
    )
    # each step is a clone of the draft its function became, under the controller
    assert all(task["parent"] == controller["id"] for task in (one, two, three))
    assert "def step_one(pickle_data_url)" in one["script"]["code"]
    assert "def iris_pickle_url()" in one["script"]["code"]  # the helper it calls
    assert "run_function_step(step_one" in one["script"]["code"]
    frame = _artifacts(cluster, one["id"])["data_frame"]
    assert frame["kind"] == "pandas" and frame["state"] == "ready"
    data_url = two["hyperparameters"]["kwargs_artifacts"]["data_frame"]["value"]
    assert data_url == frame["url"]  # resolved by the server from ${step_one.data_frame}
    assert _artifacts(cluster, two["id"])["processed_data"]["kind"] == "pickle"
    assert _artifacts(cluster, three["id"])["model"]["kind"] == "pickle"

    plots = {
        (p["title"], p["series"]): p["figure"]
        for p in cluster.get(f"tasks/{controller['id']}/plots/")
    }
    flow = plots[("Pipeline", "Execution Flow")]
    # (long entries are broken over lines so the box fits its card)
    hover = "\n".join(
        t.replace("<br>", "") for trace in flow["data"] for t in (trace.get("hovertext") or [])
    )
    assert "function: step_two(data_frame=${step_one.data_frame}" in hover, hover
    assert "returns: processed_data" in hover

    # Run again from the server: every function step is reused from the cache.
    again = cluster.post(f"pipelines/{run['id']}/rerun/")
    again = _ended(cluster, again["id"])
    assert again["status"] == "completed"
    assert {n["name"]: n["status"] for n in again["nodes"]} == {
        "step_one": "cached",
        "step_two": "cached",
        "step_three": "cached",
    }
    assert {n["name"]: n["task"] for n in again["nodes"]} == {
        n: v["task"] for n, v in nodes.items()
    }


def test_the_decorator_example_runs_its_components_as_tasks_of_this_process(cluster):
    result = run_script(
        EXAMPLES / "pipeline_from_decorator" / "pipeline_from_decorator.py",
        _env(cluster),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "returned model: LogisticRegression" in out
    accuracy = float(re.search(r"Accuracy=([0-9.]+)%", out).group(1))
    assert accuracy > 50
    assert out.strip().endswith("process completed")

    controller = _newest_controller(cluster, "custom pipeline logic")
    assert controller["status"] == "completed"
    run = _run_of(cluster, controller["id"])
    assert run["status"] == "completed" and run["definition"] == "closed"
    nodes = _nodes(run)
    assert list(nodes) == ["step_one", "step_two", "step_three", "step_four"]
    steps = {step["name"]: step for step in run["steps"]}
    assert steps["step_three"]["parents"] == ["step_two"]
    assert sorted(steps["step_four"]["parents"]) == ["step_three", "step_two"]
    for name, node in nodes.items():
        task = cluster.task(node["task"])
        assert task["status"] == "completed" and task["worker"] == "", name
        assert task["started"] and task["completed"], name
    two = nodes["step_two"]["task"]
    assert set(_artifacts(cluster, two)) == {"X_train", "X_test", "y_train", "y_test"}
    assert "step_two" in cluster.console_text(two)
    assert _artifacts(cluster, nodes["step_four"]["task"])["accuracy"]["kind"] == "json"


def test_start_locally_runs_steps_as_subprocesses_recorded_with_console_and_plots(cluster):
    result = run_script(SCRIPTS / "function_steps_local.py", _env(cluster), timeout=180)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "OUTCOME True" in result.stdout
    controller_id = re.search(r"CONTROLLER ([0-9a-f]{32})", result.stdout).group(1)
    run = _run_of(cluster, controller_id)
    nodes = _nodes(run)
    assert run["status"] == "completed" and run["driver"] == "client"
    produce, consume = (
        cluster.task(nodes["produce"]["task"]),
        cluster.task(nodes["consume"]["task"]),
    )
    assert produce["status"] == consume["status"] == "completed"
    assert "PRODUCE 4" in cluster.console_text(produce["id"])
    assert "CONSUME 4" in cluster.console_text(consume["id"])
    assert _artifacts(cluster, produce["id"])["table"]["kind"] == "json"
    plots = {(p["title"], p["series"]) for p in cluster.get(f"tasks/{consume['id']}/plots/")}
    assert ("squares", "curve") in plots
    scalars = cluster.get(f"tasks/{produce['id']}/scalars/")
    assert "rows" in str(scalars)


def test_callbacks_of_a_started_pipeline_see_resolved_values_and_may_edit_or_skip(cluster):
    queue, services = cluster.queue("steps"), cluster.queue("services")
    cluster.start_worker(services)  # the controller holds its slot while the steps run
    cluster.start_worker(queue)
    result = run_script(
        SCRIPTS / "callbacks_resolved.py", _env(cluster), timeout=120, args=[queue, services]
    )
    # start() with callbacks: registered, enqueued on services, and this process exits
    assert result.returncode == 0, result.stderr
    controller = _newest_controller(cluster, "pipeline callbacks resolved")
    done = cluster.wait_for_status(controller["id"], "completed", "failed", timeout=240)
    console = cluster.console_text(controller["id"])
    assert done["status"] == "completed", console[-3000:]
    run = _run_of(cluster, controller["id"])
    nodes = _nodes(run)
    first = nodes["first"]["task"]
    # the callback saw ${first.id} resolved, and the step ran with its edit
    assert f"PRE second [('kwargs/size', 1), ('kwargs/source_id', '{first}')]" in console, console
    second = cluster.task(nodes["second"]["task"])
    assert second["hyperparameters"]["kwargs"]["size"]["value"] == "5"
    assert f"SECOND got {first} 5" in cluster.console_text(second["id"])
    assert f"POST second {second['id']} 10" in console
    # each change the controller saw, in order, from pending to completed
    changes = re.findall(r"STATUS second (\w+)->(\w+)", console)
    assert changes[0][0] == "pending" and changes[-1][1] == "completed", changes
    assert all(a[1] == b[0] for a, b in zip(changes, changes[1:], strict=False)), changes
    assert "PRE third skipped" in console
    assert nodes["third"]["status"] == "skipped" and nodes["third"]["task"] is None
    assert nodes["fourth"]["status"] == "skipped" and nodes["fourth"]["task"] is None
    assert run["status"] == "completed"


def test_independent_components_run_at_the_same_time_and_a_map_collects_in_order(cluster, tmp_path):
    queue = cluster.queue("parallel")
    cluster.start_worker(queue)
    cluster.start_worker(queue)
    result = run_script(
        SCRIPTS / "decorator_parallel.py", _env(cluster), timeout=240, args=[queue, str(tmp_path)]
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "JOINED left+right" in result.stdout
    assert "SQUARES [1, 2, 5, 10] SUM 18" in result.stdout
    controller = _newest_controller(cluster, "decorator parallel")
    nodes = _nodes(_run_of(cluster, controller["id"]))
    left, right = cluster.task(nodes["left"]["task"]), cluster.task(nodes["right"]["task"])
    # each started before the other ended: they ran at the same time, on two workers
    assert left["started"] < right["completed"] and right["started"] < left["completed"]
    assert left["worker"] != right["worker"]
    assert nodes["square"]["status"] == "completed"


def test_a_decorator_pipeline_by_default_runs_its_logic_on_a_services_worker(cluster):
    queue, services = cluster.queue("steps"), cluster.queue("services")
    cluster.start_worker(services)  # the logic holds its slot while the steps run
    cluster.start_worker(queue)
    result = run_script(
        SCRIPTS / "decorator_remote.py", _env(cluster), timeout=120, args=[queue, services]
    )
    # on this machine the call enqueues the logic and exits
    assert result.returncode == 0, result.stderr
    assert "LOGIC DONE" not in result.stdout
    controller = _newest_controller(cluster, "decorator remote")
    done = cluster.wait_for_status(controller["id"], "completed", "failed", timeout=180)
    console = cluster.console_text(controller["id"])
    assert done["status"] == "completed", console[-3000:]
    assert "RESULT 40" in console and "LOGIC DONE" in console
    run = _run_of(cluster, controller["id"])
    assert [node["name"] for node in run["nodes"]] == ["double", "double_1"]
    assert run["status"] == "completed" and run["definition"] == "closed"


@pytest.mark.parametrize(
    ("target", "rounds", "said", "steps"),
    [
        (0.75, 5, "REACHED 0.75 AFTER 3", 3),  # the condition ends the loop
        (10.0, 4, "GAVE UP AT 1.0 AFTER 4", 4),  # the bound does
    ],
)
def test_a_bounded_loop_repeats_a_component_until_its_condition_or_its_bound(
    cluster, target, rounds, said, steps
):
    result = run_script(
        SCRIPTS / "decorator_loop.py",
        _env(cluster),
        timeout=240,
        args=["default", str(target), str(rounds)],
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert said in result.stdout
    controller = _newest_controller(cluster, f"decorator loop {target}")
    run = _run_of(cluster, controller["id"])
    assert run["status"] == "completed" and run["definition"] == "closed"
    names = ["refine"] + [f"refine_{i}" for i in range(1, steps)]
    assert [node["name"] for node in run["nodes"]] == names
    assert all(node["status"] == "completed" for node in run["nodes"])
    # each round is a child of the one before it: the loop is drawn as a chain
    parents = {step["name"]: step["parents"] for step in run["steps"]}
    assert [parents[name] for name in names] == [[], *[[name] for name in names[:-1]]]
    last = cluster.task(_nodes(run)[names[-1]]["task"])
    assert f"REFINING {0.25 * (steps - 1)}" in cluster.console_text(last["id"])
