"""Triggers against the real models and core's listener points: each event fires a
trigger at most once, references resolve from the triggering task, loops are cut."""

import pytest
from django.db import transaction

from tests.factories import make_base_task, make_controller, make_user, run_as_worker
from webapp.automation import triggers
from webapp.automation.models import TriggerFiring
from webapp.core import engine, events, services
from webapp.core.errors import InvalidInput, NotFound
from webapp.core.models import Task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def user():
    return make_user()


@pytest.fixture
def follow_up(user):
    return make_base_task(user, "follow up", project="downstream", params={"source": ""})


def _trigger(user, follow_up, **fields):
    return triggers.create_trigger(
        user=user,
        name=fields.pop("name", "t"),
        base_task=follow_up.pk,
        task_parameters=fields.pop("task_parameters", {"General/source": "${trigger.id}"}),
        **fields,
    )


def _queued(user, name="train"):
    task = make_base_task(user, name)
    return services.enqueue_task(task, "default")


def _start_pending():
    for firing in TriggerFiring.objects.filter(state="pending"):
        triggers.start_firing(firing.pk)


def test_a_completion_fires_once_and_passes_the_triggering_task(user, follow_up):
    task = _queued(user)
    _trigger(user, follow_up, event="status", statuses=["completed"], watch_project="examples")
    run_as_worker(task)
    firing = TriggerFiring.objects.get()
    assert (firing.state, firing.source_task_id) == ("pending", task.pk)
    # The message and the sweep both try to start it: it starts once.
    triggers.start_firing(firing.pk)
    triggers.start_firing(firing.pk)
    assert triggers.start_pending() == 0
    firing.refresh_from_db()
    started = Task.objects.get(pk=firing.task_id)
    assert firing.state == "launched" and started.parent_id == follow_up.pk
    assert started.hyperparameters["General"]["source"]["value"] == task.pk
    assert TriggerFiring.objects.count() == 1


def test_a_failure_a_tag_a_metric_and_an_artifact_each_fire_their_trigger(user, follow_up):
    _trigger(user, follow_up, name="failed", event="status", statuses=["failed"])
    _trigger(user, follow_up, name="tag", event="tags", on_tags=["deploy", "gold"])
    _trigger(
        user,
        follow_up,
        name="metric",
        event="metric",
        metric_title="loss",
        metric_series="val",
        threshold=0.2,
        sign="min",
    )
    _trigger(user, follow_up, name="artifact", event="artifact", artifact_name="model")
    task = _queued(user)
    services.edit_task(task, {"tags": ["deploy"]})  # not all of them yet
    services.edit_task(task, {"tags": ["deploy", "gold"]})
    services.edit_task(task, {"tags": ["deploy", "gold", "x"]})  # already fired
    scalar = {"type": "scalar", "title": "loss", "series": "val"}
    events.ingest_events(task, [{**scalar, "iteration": 0, "value": 0.5}])
    events.ingest_events(task, [{**scalar, "iteration": 1, "value": 0.1}])
    events.ingest_events(task, [{**scalar, "iteration": 2, "value": 0.05}])
    run_as_worker(task, "failed", artifacts=["model"])
    fired = sorted(f.trigger.name for f in TriggerFiring.objects.select_related("trigger"))
    assert fired == ["failed", "metric", "tag"]
    metric = TriggerFiring.objects.get(trigger__name="metric")
    assert metric.detail["value"] == 0.1


def test_a_rolled_back_event_fires_nothing(user, follow_up):
    _trigger(user, follow_up, event="tags", on_tags=["deploy"])
    task = make_base_task(user, "train")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.edit_task(task, {"tags": ["deploy"]})
        raise RuntimeError("the request failed after the edit")
    assert TriggerFiring.objects.count() == 0


def test_what_a_trigger_started_does_not_fire_it_again(user):
    base = make_base_task(user, "loop", params={"source": ""})
    triggers.create_trigger(
        user=user, name="loop", base_task=base.pk, event="status", statuses=["completed"]
    )
    task = services.enqueue_task(make_base_task(user, "first"), "default")
    run_as_worker(task)
    _start_pending()
    started = Task.objects.get(pk=TriggerFiring.objects.get().task_id)
    run_as_worker(started)
    assert TriggerFiring.objects.count() == 1


def test_a_pipeline_trigger_reads_an_artifact_of_the_runs_steps(user, follow_up):
    _trigger(
        user,
        follow_up,
        source="pipeline",
        event="status",
        statuses=["completed"],
        task_parameters={"General/source": "${trigger.artifacts.dataset.url}"},
    )
    make_base_task(user, "step1")
    run = engine.start_run(
        user=user,
        controller=make_controller(user),
        steps=[{"name": "a", "base_task_project": "examples", "base_task_name": "step1"}],
    )
    engine.advance(run.id)
    step = run.nodes.get().task
    run_as_worker(step, artifacts=["dataset"])
    engine.advance(run.id, changed_task_id=step.pk)
    _start_pending()
    firing = TriggerFiring.objects.get()
    assert firing.source_task_id == run.controller_id, firing.reason
    started = Task.objects.get(pk=firing.task_id)
    url = step.artifacts.get(name="dataset").url
    assert started.hyperparameters["General"]["source"]["value"] == url


def test_bad_triggers_are_refused_and_hidden_tasks_never_fire_them(user, follow_up):
    for fields in (
        {"event": "status", "statuses": ["queued"]},
        {"event": "metric", "metric_title": "loss", "metric_series": "val"},
        {"event": "tags", "on_tags": []},
        {"event": "artifact", "artifact_name": "a.b"},
        {"event": "status", "statuses": ["failed"], "name_pattern": "("},
        {"event": "status", "statuses": ["failed"], "task_parameters": {"x": "${trigger.nope}"}},
    ):
        with pytest.raises(InvalidInput):
            _trigger(user, follow_up, name="bad", **fields)
    other = make_user("mallory")
    with pytest.raises(NotFound):
        _trigger(other, follow_up, name="x", event="status", statuses=["completed"])
    mine = make_base_task(other, "mine", project="mallory-only")
    triggers.create_trigger(
        user=other, name="spy", base_task=mine.pk, event="status", statuses=["completed"]
    )
    run_as_worker(_queued(user))  # alice's task: mallory's trigger must not see it
    assert TriggerFiring.objects.count() == 0


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|aa)*$", r"(\w+)\1", ".*.*.*x", "(?:a*)*"])
def test_a_name_pattern_that_could_backtrack_for_ever_is_refused(user, follow_up, pattern):
    with pytest.raises(InvalidInput) as error:
        _trigger(user, follow_up, event="status", statuses=["failed"], name_pattern=pattern)
    assert "exponential time" in error.value.message


def test_an_ordinary_name_pattern_matches_as_a_regular_expression(user, follow_up):
    _trigger(user, follow_up, event="status", statuses=["failed"], name_pattern=r"^train \d+$")
    run_as_worker(_queued(user, "train 12"), "failed")
    run_as_worker(_queued(user, "pretrain 12"), "failed")
    assert [f.source_task.name for f in TriggerFiring.objects.all()] == ["train 12"]
