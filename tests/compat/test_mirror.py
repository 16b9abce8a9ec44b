"""The mirror of ClearML pipelines (webapp/compat/mirror.py) against the real models and
services, and the engine leaving mirrored runs alone. The SDK's own pipelines are mirrored
end to end in test_clearml_sdk.py."""

import json

import pytest

from tests.factories import make_base_task, make_user
from webapp.compat import mirror
from webapp.core import engine, services, status
from webapp.core.errors import Conflict
from webapp.core.models import PipelineRun, Plot, Task

pytestmark = pytest.mark.django_db


def _clearml_task(user, name, task_type="training", parent=None, project="examples/.pipelines/x"):
    task = services.create_task(
        user=user, project_name=project, name=name, task_type=task_type, parent=parent
    )
    return services.edit_task(task, {"system_tags": ["clearml"]}, force=True)


def _write_dag(controller, dag: dict) -> Task:
    value = {"Pipeline": {"value": json.dumps(dag), "type": "dictionary", "description": ""}}
    controller = services.edit_task(controller, {"configuration": value}, force=True)
    mirror.configuration_written(controller, ["Pipeline"])
    return controller


def _dag(base, executed=None) -> dict:
    executed = executed or {}
    return {
        "stage_data": {
            "base_task_id": base.id,
            "parents": [],
            "parameters": {"General/api_token": "t0ken-value"},
            "executed": executed.get("stage_data"),
            "job_id": executed.get("stage_data"),
            "status": "pending",
        },
        "stage_train": {
            "base_task_id": base.id,
            "parents": ["stage_data"],
            "parameters": {},
            "executed": None,
            "status": "pending",
        },
    }


@pytest.fixture
def world(django_capture_on_commit_callbacks):
    user = make_user()
    base = make_base_task(user, "template")
    with django_capture_on_commit_callbacks(execute=True):
        controller = _clearml_task(user, "pipe", task_type="controller")
        services.mark_started(controller)
        controller = _write_dag(controller, _dag(base))
    return user, base, controller, django_capture_on_commit_callbacks


def _nodes(run) -> dict:
    return {n.name: (n.task_id, n.status) for n in run.nodes.all()}


def test_a_controller_writing_its_dag_gets_a_mirrored_run(world):
    user, base, controller, on_commit = world
    run = PipelineRun.objects.get(controller=controller)
    assert (run.driver, run.status) == ("clearml", "running")
    assert [s["name"] for s in run.steps] == ["stage_data", "stage_train"]
    assert run.steps[1]["parents"] == ["stage_data"]
    assert _nodes(run) == {"stage_data": (None, "pending"), "stage_train": (None, "pending")}

    # when the controller clones and enqueues its first step (found as its child by name)
    with on_commit(execute=True):
        step = services.clone_task(base, user=user, name="stage_data", parent=controller)
        step = services.edit_task(step, {"system_tags": ["clearml"]}, force=True)
        step = services.enqueue_task(step, "default")
    assert _nodes(run)["stage_data"] == (step.id, "queued")
    # the step's status changes are followed
    with on_commit(execute=True):
        step = status.change(step, "in_progress", force=True)
    assert _nodes(run)["stage_data"] == (step.id, "running")
    with on_commit(execute=True):
        status.change(step, "failed", reason="exit code 1", force=True)
        controller = status.change(controller, "failed", force=True)
    run.refresh_from_db()
    # and so is the controller's end: its never-launched step did not run
    assert run.status == "failed" and run.completed is not None
    assert _nodes(run) == {"stage_data": (step.id, "failed"), "stage_train": (None, "skipped")}


def test_the_engine_never_acts_on_a_mirrored_run(world):
    user, base, controller, on_commit = world
    run = PipelineRun.objects.get(controller=controller)
    tasks_before = Task.objects.count()
    # the engine's sweep and hints change nothing, draw nothing over the controller's plots
    engine.advance(run.id)
    engine.advance_all_running()
    assert Task.objects.count() == tasks_before
    assert not Plot.objects.filter(task=controller).exists()
    assert _nodes(run) == {"stage_data": (None, "pending"), "stage_train": (None, "pending")}
    # the client-driver verbs refuse
    with pytest.raises(Conflict):
        engine.launch_step(run, "stage_data")
    with pytest.raises(Conflict):
        engine.skip_step(run, "stage_train")
    # stopping the run stops the controller and its running steps, and skips nothing itself
    with on_commit(execute=True):
        step = services.clone_task(base, user=user, name="stage_data", parent=controller)
        step = services.edit_task(step, {"system_tags": ["clearml"]}, force=True)
        step = services.enqueue_task(step, "default")
        engine.stop_run(run.id, "stopped from the dashboard")
    run.refresh_from_db()
    controller.refresh_from_db()
    step.refresh_from_db()
    assert (controller.status, step.status, run.status) == ("stopped", "stopped", "stopped")
    assert _nodes(run) == {"stage_data": (step.id, "aborted"), "stage_train": (None, "skipped")}
    assert not Plot.objects.filter(task=controller).exists()


def test_a_dag_cannot_link_tasks_its_owner_cannot_see(world):
    user, base, controller, on_commit = world
    stranger = make_user("mallory")
    foreign = make_base_task(stranger, "foreign", project="mallory's")
    with on_commit(execute=True):
        _write_dag(controller, _dag(base, executed={"stage_data": foreign.id}))
    run = PipelineRun.objects.get(controller=controller)
    assert _nodes(run)["stage_data"] == (None, "pending")


def test_runs_of_our_own_engine_are_not_touched(django_capture_on_commit_callbacks):
    user = make_user()
    base = make_base_task(user, "template")
    controller = services.create_task(
        user=user, project_name="examples", name="ours", task_type="controller"
    )
    run = engine.start_run(
        user=user, controller=controller, steps=[{"name": "a", "base_task_id": base.id}]
    )
    with django_capture_on_commit_callbacks(execute=True):
        _write_dag(controller, _dag(base))
    run.refresh_from_db()
    assert run.driver == "server"
    assert [s["name"] for s in run.steps] == ["a"]
