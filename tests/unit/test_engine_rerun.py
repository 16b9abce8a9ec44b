"""Why a step ran, plans, and reruns from a step, through the engine's real verbs; workers
are simulated by the claim/finish verbs their REST calls reach."""

import pytest

from tests.factories import make_base_task, make_controller, make_user, run_as_worker
from webapp.core import engine, services
from webapp.core.errors import Conflict, InvalidInput
from webapp.core.models import Artifact, PipelineRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user()


def _node(run, name):
    return run.nodes.select_related("task").get(name=name)


def _finish(run, name, outcome="completed", sha="0" * 64):
    node = _node(run, name)
    run_as_worker(node.task, outcome, ["dataset"] if name == "stage_data" else None)
    Artifact.objects.filter(task=node.task).update(sha256=sha)
    engine.advance(run.id, changed_task_id=node.task_id)
    return _node(run, name)


def _steps(cache=False):
    def step(name, base, parents=(), overrides=None):
        return {
            "name": name,
            "base_task_project": "examples",
            "base_task_name": base,
            "parents": list(parents),
            "parameter_override": overrides or {},
            "cache_executed_step": cache,
        }

    return [
        step("stage_data", "step1"),
        step(
            "stage_process",
            "step2",
            ["stage_data"],
            {
                "General/dataset_url": "${stage_data.artifacts.dataset.url}",
                "General/test_size": 0.25,
            },
        ),
        step(
            "stage_train",
            "step3",
            ["stage_process"],
            {"General/dataset_task_id": "${stage_process.id}"},
        ),
    ]


@pytest.fixture
def bases(user):
    return {
        "stage_data": make_base_task(user, "step1"),
        "stage_process": make_base_task(
            user, "step2", params={"dataset_url": "", "test_size": 0.2}
        ),
        "stage_train": make_base_task(user, "step3", params={"dataset_task_id": ""}),
    }


def _start(user, steps):
    run = engine.start_run(user=user, controller=make_controller(user), steps=steps)
    engine.advance(run.id)
    return run


def _complete(run, shas=None):
    for name in ("stage_data", "stage_process", "stage_train"):
        node = _node(run, name)
        if node.status != "cached":
            _finish(run, name, sha=(shas or {}).get(name, "0" * 64))
    run.refresh_from_db()
    assert run.status == "completed"
    return run


def _decisions(run):
    return {n.name: n.decision for n in run.nodes.all()}


def test_a_rerun_from_a_step_reuses_what_is_above_and_its_plan_says_so(user, bases):
    first = _complete(_start(user, _steps()))
    assert {n: d["code"] for n, d in _decisions(first).items()} == dict.fromkeys(
        ("stage_data", "stage_process", "stage_train"), "caching_off"
    )
    assert _decisions(first)["stage_data"]["changes"][0]["code"] == "first_run"
    edits = {"stage_process": {"General/test_size": 0.3}}
    plan = engine.rerun_from(
        first.id, user=user, step="stage_process", parameter_override=edits, dry_run=True
    )
    predicted = {entry["name"]: entry for entry in plan}
    assert [e["name"] for e in plan] == ["stage_data", "stage_process", "stage_train"]
    assert predicted["stage_data"]["outcome"] == "reused"
    assert predicted["stage_data"]["task"] == _node(first, "stage_data").task_id
    assert predicted["stage_process"]["changes"] == [
        {
            "code": "parameter_changed",
            "text": "parameter `General/test_size` changed from 0.25 to 0.3",
            "parameter": "General/test_size",
        }
    ]

    second = engine.rerun_from(first.id, user=user, step="stage_process", parameter_override=edits)
    engine.advance(second.id)
    assert second.rerun_of_id == first.id and second.rerun_from_step == "stage_process"
    data = _node(second, "stage_data")
    assert data.status == "cached" and data.task_id == _node(first, "stage_data").task_id
    assert data.decision["code"] == "reused_from_run" and first.id in data.decision["reason"]
    process = _node(second, "stage_process")
    assert process.task.hyperparameters["General"]["test_size"]["value"] == "0.3"
    assert process.task.hyperparameters["General"]["dataset_url"]["value"] == (
        Artifact.objects.get(task=data.task, name="dataset").url
    )
    _complete(second)
    decisions = _decisions(second)
    for entry in plan:
        assert decisions[entry["name"]]["outcome"] == entry["outcome"], entry
        assert decisions[entry["name"]]["code"] == entry["code"], entry
    assert decisions["stage_process"]["changes"] == predicted["stage_process"]["changes"]
    assert decisions["stage_train"]["changes"][0]["code"] == "parent_ran"
    # the edit is part of the new run's definition
    process_step = next(s for s in second.steps if s["name"] == "stage_process")
    assert process_step["parameter_override"]["General/test_size"] == 0.3


def test_with_caching_on_each_reason_is_given_and_the_plan_predicts_it(user, bases):
    first = _complete(_start(user, _steps(cache=True)), {"stage_data": "a" * 64})
    assert {n: d["code"] for n, d in _decisions(first).items()} == dict.fromkeys(
        ("stage_data", "stage_process", "stage_train"), "first_run"
    )
    plan = engine.plan_new(
        user=user, project_name="examples", name="pipeline demo", steps=_steps(True), parameters={}
    )
    assert [(e["name"], e["outcome"], e["code"]) for e in plan] == [
        ("stage_data", "reused", "cache_hit"),
        ("stage_process", "reused", "cache_hit"),
        ("stage_train", "reused", "cache_hit"),
    ]
    again = PipelineRun.objects.get(pk=_start(user, _steps(cache=True)).pk)
    assert again.status == "completed"
    assert {n.name: (n.status, n.task_id) for n in again.nodes.all()} == {
        n.name: ("cached", n.task_id) for n in first.nodes.all()
    }
    for entry in plan:
        assert _decisions(again)[entry["name"]]["code"] == entry["code"]

    # the base of stage_data changes its code: it runs, its dataset has another hash
    services.edit_task(
        bases["stage_data"], {"script": {"entry_point": "step1.py", "code": "print(2)"}}
    )
    plan = engine.plan_new(
        user=user, project_name="examples", name="pipeline demo", steps=_steps(True), parameters={}
    )
    third = _start(user, _steps(cache=True))
    assert _node(third, "stage_data").decision["reason"] == "script changed"
    _finish(third, "stage_data", sha="b" * 64)
    process = _node(third, "stage_process").decision
    assert process["code"] == "artifact_changed", process
    assert process["reason"] == "parent artifact `dataset` changed hash"
    _finish(third, "stage_process")
    _finish(third, "stage_train")
    # what the new data will be is not known before it runs: the plan says its parent
    # runs again, the run then names what changed
    assert [(e["name"], e["outcome"], e["code"]) for e in plan] == [
        ("stage_data", "ran", "script_changed"),
        ("stage_process", "ran", "parent_ran"),
        ("stage_train", "ran", "parent_ran"),
    ]
    assert {name: d["outcome"] for name, d in _decisions(third).items()} == dict.fromkeys(
        ("stage_data", "stage_process", "stage_train"), "ran"
    )

    edits = {"stage_process": {"General/test_size": 0.3}}
    fourth = engine.rerun_from(third.id, user=user, step="stage_process", parameter_override=edits)
    engine.advance(fourth.id)
    assert _node(fourth, "stage_process").decision["reason"] == (
        "parameter `General/test_size` changed from 0.25 to 0.3"
    )


def test_a_rerun_refuses_what_it_cannot_do(user, bases):
    run = _start(user, _steps())
    with pytest.raises(Conflict):
        engine.rerun_from(run.id, user=user, step="stage_process")  # still running
    run = _complete(run)
    for step, edits, words in (
        ("nope", {}, "no step"),
        ("stage_process", {"nope": {"General/test_size": 1}}, "no step"),
        ("stage_process", {"stage_data": {}}, "not below"),
        ("stage_process", {"stage_process": {"General/nope": 1}}, "no parameter"),
        ("stage_process", {"stage_process": {"General/test_size": [1]}}, "a value must"),
        ("stage_process", {"stage_process": "x"}, "as an object"),
        # an edit that makes a reference has the whole graph checked again
        (
            "stage_process",
            {"stage_process": {"General/test_size": "${stage_train.id}"}},
            "stage_train",
        ),
        ("stage_process", {"stage_process": {"General/test_size": "x" * 70000}}, "parameter"),
    ):
        with pytest.raises(InvalidInput, match=words):
            engine.rerun_from(run.id, user=user, step=step, parameter_override=edits)
    assert PipelineRun.objects.count() == 1
    # a parameter only the base task has may be edited too
    engine.rerun_from(
        run.id,
        user=user,
        step="stage_train",
        parameter_override={"stage_train": {"General/dataset_task_id": "x"}},
    )


def test_a_secret_parameter_is_kept_and_explained_only_as_a_digest(user):
    make_base_task(user, "step1", params={"api_token": "first-s3cret", "lr": 0.1})
    steps = [{"name": "stage_data", "base_task_project": "examples", "base_task_name": "step1"}]
    first = _start(user, steps)
    _finish(first, "stage_data")
    first.refresh_from_db()
    kept = _node(first, "stage_data").key_inputs
    assert "first-s3cret" not in str(kept) and kept["params"]["General/lr"] == "0.1"
    edits = {"stage_data": {"General/api_token": "second-s3cret"}}
    second = engine.rerun_from(first.id, user=user, step="stage_data", parameter_override=edits)
    engine.advance(second.id)
    decision = _node(second, "stage_data").decision
    assert decision["changes"] == [
        {
            "code": "parameter_changed",
            "text": "parameter `General/api_token` changed",
            "parameter": "General/api_token",
        }
    ]
    assert "s3cret" not in str(decision) + str(_node(second, "stage_data").key_inputs)
    # the mask given back unchanged keeps the stored value
    _finish(second, "stage_data")
    third = engine.rerun_from(
        second.id,
        user=user,
        step="stage_data",
        parameter_override={"stage_data": {"General/api_token": "********"}},
    )
    step = next(s for s in third.steps if s["name"] == "stage_data")
    assert step["parameter_override"]["General/api_token"] == "second-s3cret"


def test_a_failed_or_aborted_run_reruns_from_a_step_and_what_did_not_complete_runs(user, bases):
    run = _start(user, _steps())
    _finish(run, "stage_data")
    _finish(run, "stage_process", outcome="failed")
    run.refresh_from_db()
    assert run.status == "failed"
    again = engine.rerun_from(run.id, user=user, step="stage_process")
    engine.advance(again.id)
    assert _node(again, "stage_data").task_id == _node(run, "stage_data").task_id
    assert _node(again, "stage_process").status == "queued"
    # from the last step: stage_process failed in the run, so it is not reused but runs
    plan = engine.rerun_from(run.id, user=user, step="stage_train", dry_run=True)
    assert [(e["name"], e["outcome"]) for e in plan] == [
        ("stage_data", "reused"),
        ("stage_process", "ran"),
        ("stage_train", "ran"),
    ]
    stopped = _start(user, _steps())
    _finish(stopped, "stage_data")
    engine.stop_run(stopped.id, "stopped by user")
    plan = engine.rerun_from(stopped.id, user=user, step="stage_train", dry_run=True)
    assert [e["outcome"] for e in plan] == ["reused", "ran", "ran"]
    # a rerun of a rerun reuses what the first one reused
    _finish(again, "stage_process")
    _finish(again, "stage_train")
    third = engine.rerun_from(again.id, user=user, step="stage_train")
    assert _node(third, "stage_data").task_id == _node(run, "stage_data").task_id
