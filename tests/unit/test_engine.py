"""The pipeline engine against the real models and services; workers are simulated by the
same claim/finish verbs that the worker's REST calls reach."""

import pytest

from tests.factories import make_base_task, make_controller, make_user, run_as_worker
from webapp.core import engine, execution
from webapp.core.errors import Conflict, InvalidInput
from webapp.core.models import PipelineRun, Plot, Queue, Task

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user()


def _steps(*specs):
    return [dict(spec) for spec in specs]


def _node(run, name):
    return run.nodes.select_related("task").get(name=name)


def _finish(run, name, outcome="completed", artifacts=None):
    """Complete a step's task, then advance as the status-change hook does (with a hint)."""
    node = _node(run, name)
    run_as_worker(node.task, outcome, artifacts)
    engine.advance(run.id, changed_task_id=node.task_id)
    return _node(run, name)


def seed_steps():
    return _steps(
        {"name": "stage_data", "base_task_project": "examples", "base_task_name": "step1"},
        {
            "name": "stage_process",
            "parents": ["stage_data"],
            "base_task_project": "examples",
            "base_task_name": "step2",
            "parameter_override": {
                "General/dataset_url": "${stage_data.artifacts.dataset.url}",
                "General/test_size": 0.25,
            },
        },
        {
            "name": "stage_train",
            "parents": ["stage_process"],
            "base_task_project": "examples",
            "base_task_name": "step3",
            "parameter_override": {"General/dataset_task_id": "${stage_process.id}"},
        },
    )


def test_seed_pipeline_clones_each_step_resolves_references_and_completes(user):
    step1 = make_base_task(user, "step1")
    step2 = make_base_task(user, "step2", params={"dataset_url": "", "test_size": 0.2})
    step3 = make_base_task(user, "step3", params={"dataset_task_id": "REPLACE"})
    controller = make_controller(user)
    run = engine.start_run(user=user, controller=controller, steps=seed_steps())
    engine.advance(run.id)

    data = _node(run, "stage_data")
    assert data.status == "queued"
    assert data.task.parent_id == controller.id and data.task.id != step1.id
    assert _node(run, "stage_process").task is None

    _finish(run, "stage_data", artifacts=["dataset"])
    process = _node(run, "stage_process")
    params = process.task.hyperparameters["General"]
    url = data.task.artifacts.get(name="dataset").url
    assert params["dataset_url"]["value"] == url
    assert params["test_size"] == {"value": "0.25", "type": "float", "description": ""}

    _finish(run, "stage_process")
    train = _node(run, "stage_train")
    assert train.task.hyperparameters["General"]["dataset_task_id"]["value"] == process.task.id

    _finish(run, "stage_train")
    run.refresh_from_db()
    controller.refresh_from_db()
    assert run.status == "completed" and controller.status == "completed"
    for base in (step1, step2, step3):
        fresh = Task.objects.get(pk=base.pk)
        assert fresh.status == "created" and fresh.hyperparameters == base.hyperparameters
    plots = Plot.objects.filter(task=controller, title="Pipeline")
    assert sorted(p.series for p in plots) == ["Execution Details", "Execution Flow"]
    flow = plots.get(series="Execution Flow").figure
    # (long entries are broken over lines so the box fits its card)
    hover = " ".join(
        text.replace("<br>", "")
        for trace in flow["data"]
        for text in (trace.get("hovertext") or [])
        if text
    )
    for expected in ("stage_data", "stage_process", "stage_train", "General/test_size: 0.25"):
        assert expected in hover
    assert f"General/dataset_url: {url}" in hover


def test_advancing_twice_never_clones_a_step_twice(user):
    make_base_task(user, "a")
    run = engine.start_run(
        user=user,
        controller=make_controller(user),
        steps=_steps({"name": "a", "base_task_name": "a"}),
    )
    before = Task.objects.count()
    for _ in range(3):
        engine.advance(run.id)
    assert Task.objects.count() == before + 1


def test_diamond_fans_out_and_waits_for_both_parents(user):
    for name in "abcd":
        make_base_task(user, name)
    steps = _steps(
        {"name": "a", "base_task_name": "a"},
        {"name": "b", "base_task_name": "b", "parents": ["a"]},
        {"name": "c", "base_task_name": "c", "parents": ["a"]},
        {"name": "d", "base_task_name": "d", "parents": ["b", "c"]},
    )
    run = engine.start_run(user=user, controller=make_controller(user), steps=steps)
    engine.advance(run.id)
    _finish(run, "a")
    assert _node(run, "b").status == "queued" and _node(run, "c").status == "queued"
    _finish(run, "b")
    assert _node(run, "d").task is None
    _finish(run, "c")
    assert _node(run, "d").status == "queued"
    _finish(run, "d")
    run.refresh_from_db()
    assert run.status == "completed"


@pytest.mark.parametrize("continue_on_fail", [False, True])
def test_a_failing_step_skips_its_children_unless_continue_on_fail(user, continue_on_fail):
    make_base_task(user, "a")
    make_base_task(user, "b")
    steps = _steps(
        {"name": "a", "base_task_name": "a", "continue_on_fail": continue_on_fail},
        {"name": "b", "base_task_name": "b", "parents": ["a"]},
    )
    controller = make_controller(user)
    run = engine.start_run(user=user, controller=controller, steps=steps)
    engine.advance(run.id)
    _finish(run, "a", outcome="failed")
    if continue_on_fail:
        assert _node(run, "b").status == "queued"
        _finish(run, "b")
    else:
        assert _node(run, "b").status == "skipped"
    run.refresh_from_db()
    controller.refresh_from_db()
    expected = "completed" if continue_on_fail else "failed"
    assert run.status == expected and controller.status == expected


def test_abort_on_failure_aborts_running_siblings(user):
    for name in "ab":
        make_base_task(user, name)
    steps = _steps({"name": "a", "base_task_name": "a"}, {"name": "b", "base_task_name": "b"})
    run = engine.start_run(
        user=user, controller=make_controller(user), steps=steps, abort_on_failure=True
    )
    engine.advance(run.id)
    _finish(run, "a", outcome="failed")
    sibling = _node(run, "b")
    assert sibling.status == "aborted" and sibling.task.status == "stopped"
    run.refresh_from_db()
    assert run.status == "failed"


def test_retry_on_failure_relaunches_a_fresh_clone(user):
    make_base_task(user, "a")
    steps = _steps({"name": "a", "base_task_name": "a", "retry_on_failure": 1})
    run = engine.start_run(user=user, controller=make_controller(user), steps=steps)
    engine.advance(run.id)
    first = _node(run, "a").task
    _finish(run, "a", outcome="failed")
    node = _node(run, "a")
    assert node.status == "queued" and node.attempts == 2 and node.task.id != first.id
    _finish(run, "a", outcome="failed")
    run.refresh_from_db()
    assert run.status == "failed"


def test_cache_executed_step_reuses_a_completed_task_with_the_same_inputs(user):
    make_base_task(user, "a", params={"x": 1})
    steps = _steps(
        {
            "name": "a",
            "base_task_name": "a",
            "cache_executed_step": True,
            "parameter_override": {"General/x": 2},
        }
    )
    first = engine.start_run(user=user, controller=make_controller(user, "p1"), steps=steps)
    engine.advance(first.id)
    _finish(first, "a")
    second = engine.start_run(user=user, controller=make_controller(user, "p2"), steps=steps)
    engine.advance(second.id)
    cached = _node(second, "a")
    assert cached.status == "cached" and cached.task_id == _node(first, "a").task_id
    second.refresh_from_db()
    assert second.status == "completed"
    changed = _steps({**steps[0], "parameter_override": {"General/x": 3}})
    third = engine.start_run(user=user, controller=make_controller(user, "p3"), steps=changed)
    engine.advance(third.id)
    assert _node(third, "a").status == "queued"


def test_a_reference_to_a_pending_artifact_fails_the_step_with_a_reason(user):
    make_base_task(user, "a")
    make_base_task(user, "b")
    steps = _steps(
        {"name": "a", "base_task_name": "a"},
        {
            "name": "b",
            "base_task_name": "b",
            "parents": ["a"],
            "parameter_override": {"General/u": "${a.artifacts.model.url}"},
        },
    )
    run = engine.start_run(user=user, controller=make_controller(user), steps=steps)
    engine.advance(run.id)
    _finish(run, "a")  # no artifact named model
    node = _node(run, "b")
    assert node.status == "failed" and "model" in node.message and node.task is None


@pytest.mark.parametrize(
    ("steps", "step", "parameter", "words"),
    [
        ([{"name": "a", "base_task_name": "a", "parents": ["zz"]}], "a", None, "zz"),
        (
            [
                {"name": "a", "base_task_name": "a", "parents": ["b"]},
                {"name": "b", "base_task_name": "b", "parents": ["a"]},
            ],
            "a",
            None,
            "cycle",
        ),
        (
            [{"name": "a", "base_task_name": "a"}, {"name": "a", "base_task_name": "b"}],
            "a",
            None,
            "duplicate",
        ),
        ([{"name": "a", "base_task_name": "missing"}], "a", "base_task_name", "missing"),
        (
            [
                {"name": "a", "base_task_name": "a"},
                {
                    "name": "b",
                    "base_task_name": "b",
                    "parameter_override": {"General/x": "${a.id}"},
                },
            ],
            "b",
            "General/x",
            "not an ancestor",
        ),
        (
            [{"name": "a", "base_task_name": "a", "parameter_override": {"General/x": "${a."}}],
            "a",
            "General/x",
            "malformed",
        ),
    ],
)
def test_bad_definitions_are_refused_naming_step_and_parameter_and_clone_nothing(
    user, steps, step, parameter, words
):
    make_base_task(user, "a")
    make_base_task(user, "b")
    controller = make_controller(user)
    before = Task.objects.count()
    with pytest.raises(InvalidInput) as error:
        engine.start_run(user=user, controller=controller, steps=steps)
    assert words in str(error.value.message).lower()
    assert error.value.details["step"] == step
    if parameter:
        assert error.value.details["parameter"] == parameter
    assert Task.objects.count() == before


@pytest.mark.parametrize("shape", ["chain", "wide"])
def test_a_200_step_pipeline_runs_to_completion(user, shape):
    make_base_task(user, "s")
    steps = [
        {
            "name": f"s{i}",
            "base_task_name": "s",
            "parents": ([f"s{i - 1}"] if shape == "chain" else ["s0"]) if i else [],
        }
        for i in range(200)
    ]
    run = engine.start_run(user=user, controller=make_controller(user), steps=steps)
    engine.advance(run.id)
    while True:
        queued = [n for n in run.nodes.select_related("task") if n.status == "queued"]
        if not queued:
            break
        for node in queued:
            run_as_worker(node.task)
            engine.advance(run.id, changed_task_id=node.task_id)
    run.refresh_from_db()
    assert run.status == "completed"
    assert run.nodes.filter(status="completed").count() == 200


def test_stop_aborts_running_steps_and_skips_the_rest(user):
    make_base_task(user, "a")
    make_base_task(user, "b")
    steps = _steps(
        {"name": "a", "base_task_name": "a"},
        {"name": "b", "base_task_name": "b", "parents": ["a"]},
    )
    controller = make_controller(user)
    run = engine.start_run(user=user, controller=controller, steps=steps)
    engine.advance(run.id)
    task = _node(run, "a").task
    execution.claim_task(task.id, task.attempt, "w")
    engine.stop_run(run.id)
    run.refresh_from_db()
    controller.refresh_from_db()
    assert run.status == "stopped" and controller.status == "stopped"
    assert _node(run, "a").status == "aborted" and _node(run, "a").task.status == "stopped"
    assert _node(run, "b").status == "skipped"
    engine.advance(run.id)
    assert _node(run, "b").task is None


def test_run_again_starts_a_fresh_run_of_the_same_steps_under_a_new_controller(user):
    make_base_task(user, "step1")
    make_base_task(user, "step2", params={"dataset_url": "", "test_size": 0.2})
    make_base_task(user, "step3", params={"dataset_task_id": "REPLACE"})
    controller = make_controller(user)
    first = engine.start_run(
        user=user, controller=controller, steps=seed_steps(), parameters={"seed": "1"}
    )
    engine.advance(first.id)
    # a run that is still going cannot be run again
    with pytest.raises(Conflict, match="still running"):
        engine.rerun(first.id, user=user)
    engine.stop_run(first.id)

    again = engine.rerun(first.id, user=user)
    engine.advance(again.id)
    # a new controller, child of the old one, running the same steps from the same bases
    assert again.id != first.id and again.controller_id != controller.id
    assert again.controller.parent_id == controller.id
    assert (again.controller.name, again.controller.project_id) == (
        controller.name,
        controller.project_id,
    )
    assert again.parameters == {"seed": "1"} and again.status == "running"
    assert [s["name"] for s in again.steps] == ["stage_data", "stage_process", "stage_train"]
    data = _node(again, "stage_data")
    assert data.status == "queued" and data.task.parent_id == again.controller_id
    assert data.task_id != _node(first, "stage_data").task_id


def test_run_again_is_refused_for_runs_driven_by_a_script_or_a_clearml_controller(user):
    make_base_task(user, "a")
    for driver, reason in (("client", "callbacks"), ("clearml", "ClearML controller")):
        controller = make_controller(user, name=f"ctl-{driver}")
        run = engine.start_run(
            user=user, controller=controller, steps=[{"name": "a", "base_task_name": "a"}]
        )
        PipelineRun.objects.filter(pk=run.pk).update(driver=driver, status="completed")
        with pytest.raises(Conflict, match=reason):
            engine.rerun(run.id, user=user)


def test_a_claimed_step_shows_running_and_the_plot_is_asked_for_when_none_is_due(user):
    make_base_task(user, "s")
    steps = [{"name": "a", "base_task_name": "s"}, {"name": "b", "base_task_name": "s"}]
    run = engine.start_run(user=user, controller=make_controller(user), steps=steps)
    engine.advance(run.id)
    for name, plot_due in (("a", True), ("b", False)):
        if not plot_due:
            assert engine.refresh_plot(run.id) is True  # takes the due mark
        task = _node(run, name).task
        claimed, _ = execution.claim_task(task.id, task.attempt, "w")
        engine.advance(run.id, changed_task_id=task.id, task_status=claimed.status)
        node = _node(run, name)
        assert (node.status, node.message) == ("running", "claimed by w")
        assert PipelineRun.objects.get(pk=run.id).plot_due is not None


@pytest.mark.django_db(transaction=True)
def test_a_queue_deleted_during_a_run_is_made_again_for_the_next_step(user):
    """The engine remembers the queues of a run; the insert naming a deleted one fails at
    commit, and the pass runs again with them read afresh."""
    make_base_task(user, "s")
    steps = [{"name": "a", "base_task_name": "s"}, {"name": "b", "base_task_name": "s"}]
    steps[1]["parents"] = ["a"]
    run = engine.start_run(user=user, controller=make_controller(user), steps=steps)
    engine.advance(run.id)
    deleted = Queue.objects.get(name="default")
    deleted_id = deleted.pk
    deleted.delete()
    _finish(run, "a")
    task = _node(run, "b").task
    assert task.status == "queued" and task.queue.name == "default"
    assert task.queue_id != deleted_id
