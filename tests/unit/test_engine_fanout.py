"""Fan-out in the engine: a map step's items in batches added to the running run, bounded by
max_parallel, ended by min_success_ratio, collected in order; and the engine's verbs for
runs a script drives or builds (resolve, launch with a callback's values, add steps)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_base_task, make_controller, make_user
from webapp.core import access, engine, execution
from webapp.core.errors import Conflict, InvalidInput
from webapp.core.models import PipelineNode, PipelineRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return make_user()


def _map_step(items, **settings):
    return {
        "name": "square",
        "base_task_name": "square fn",
        "parameter_override": {"kwargs/factor": 2},
        "map": {"kwarg": "x", "items": items, **settings},
    }


def _start(user, steps, parameters=None, name="fan"):
    make_base_task(user, "square fn")
    make_base_task(user, "after fn")
    run = engine.start_run(
        user=user, controller=make_controller(user, name), steps=steps, parameters=parameters
    )
    engine.advance(run.id)
    return run


def _batches(run):
    return list(
        PipelineNode.objects.filter(run=run)
        .exclude(map_step="")
        .select_related("task")
        .order_by("map_index")
    )


def _node(run, name):
    return run.nodes.select_related("task").get(name=name)


def _run_batch(run, batch, failing=(), outcome=None, report=True):
    """Claim a batch's task, report its items (those in `failing` failed), finish it."""
    task = batch.task
    task.refresh_from_db()
    execution.claim_task(task.id, task.attempt, "w")
    engine.advance(run.id, changed_task_id=task.id, task_status="in_progress")
    items = batch.result["items"]
    if report:
        reports = [
            {"index": item["index"], "status": "failed", "message": "boom"}
            if item["index"] in failing
            else {
                "index": item["index"],
                "status": "completed",
                "values": {"y": item["value"] ** 2},
            }
            for item in items
        ]
        engine.report_items(task, reports)
    task.refresh_from_db()
    ended = outcome or ("failed" if set(failing) & {i["index"] for i in items} else "completed")
    execution.finish_task(task, task.attempt, ended, reason=f"exit {ended}")
    engine.advance(run.id, changed_task_id=task.id, task_status=ended)


def _finish_collector(run, outcome="completed"):
    node = _node(run, "square")
    execution.claim_task(node.task.id, node.task.attempt, "w")
    execution.finish_task(node.task, node.task.attempt, outcome)
    engine.advance(run.id, changed_task_id=node.task_id, task_status=outcome)
    return _node(run, "square")


def test_a_map_runs_its_items_in_batches_bounded_by_max_parallel_then_collects(user):
    run = _start(
        user,
        [_map_step([1, 2, 3, 4, 5], max_parallel=2, items_per_task=2)]
        + [{"name": "after", "base_task_name": "after fn", "parents": ["square"]}],
    )
    batches = _batches(run)
    assert [b.name for b in batches] == ["square[0-1]", "square[2-3]", "square[4]"]
    assert [b.status for b in batches] == ["queued", "queued", "pending"]
    first = batches[0].task
    assert first.hyperparameters["map"]["mode"]["value"] == "items"
    assert first.hyperparameters["kwargs"]["factor"]["value"] == "2"
    assert first.configuration["map_items"]["value"] == "[[0, 1], [1, 2]]"
    assert _node(run, "square").status == "running" and _node(run, "square").task is None

    _run_batch(run, batches[0])
    assert [b.status for b in _batches(run)] == ["completed", "queued", "queued"]
    for batch in _batches(run)[1:]:
        _run_batch(run, batch)
    square = _node(run, "square")
    assert square.status == "queued" and square.task is not None  # the collector
    collect = square.task.hyperparameters["map"]
    assert collect["mode"]["value"] == "collect" and collect["step"]["value"] == "square"
    assert _node(run, "after").status == "pending"

    page = engine.map_items(run, "square")
    assert page["count"] == 5
    assert [(i["index"], i["status"], i["values"]) for i in page["items"]] == [
        (i, "completed", {"y": v * v}) for i, v in enumerate([1, 2, 3, 4, 5])
    ]
    assert _finish_collector(run).status == "completed"
    assert _node(run, "after").status == "queued"


def test_a_map_with_few_enough_failures_completes_and_one_with_more_fails_naming_them(user):
    enough = _start(user, [_map_step(list(range(10)), min_success_ratio=0.8)], name="a")
    for batch in _batches(enough):
        _run_batch(enough, batch, failing={3, 7})
    assert _node(enough, "square").status == "queued"  # collecting 8 of 10
    assert "8 of 10 items completed" in _node(enough, "square").message

    short = _start(user, [_map_step(list(range(10)), min_success_ratio=0.8)], name="b")
    for batch in _batches(short):
        _run_batch(short, batch, failing={1, 4, 6})
    square = _node(short, "square")
    assert square.status == "failed" and square.task is None
    assert "3 of 10 items failed" in square.message and "items 1, 4, 6" in square.message
    short.refresh_from_db()
    assert short.status == "failed"


def test_items_a_task_never_reported_fail_with_its_end_and_reports_are_kept_once(user):
    run = _start(user, [_map_step([1, 2, 3], items_per_task=3, min_success_ratio=0.0)])
    (batch,) = _batches(run)
    task = batch.task
    execution.claim_task(task.id, task.attempt, "w")
    first = [{"index": 0, "status": "completed", "values": {"y": 1}}]
    assert engine.report_items(task, first) == 1
    assert engine.report_items(task, [{"index": 0, "status": "failed"}]) == 0  # kept once
    with pytest.raises(InvalidInput, match="item 7 is not one of this task's"):
        engine.report_items(task, [{"index": 7, "status": "completed"}])
    execution.finish_task(task, task.attempt, "failed", reason="killed by signal 9 (SIGKILL)")
    engine.advance(run.id, changed_task_id=task.id, task_status="failed")
    items = engine.map_items(run, "square")["items"]
    assert [i["status"] for i in items] == ["completed", "failed", "failed"]
    assert "SIGKILL" in items[1]["message"]


def test_map_items_come_from_a_pipeline_parameter_and_bad_lists_fail_the_step(user):
    run = _start(user, [_map_step("${pipeline.numbers}")], parameters={"numbers": [5, 6]})
    assert [b.result["items"][0]["value"] for b in _batches(run)] == [5, 6]

    not_a_list = _start(
        user, [_map_step("${pipeline.numbers}")], parameters={"numbers": 3}, name="c"
    )
    square = _node(not_a_list, "square")
    assert square.status == "failed" and "must be a list, not int" in square.message
    assert not _batches(not_a_list)


def test_bad_map_settings_are_refused_naming_the_field(user):
    make_base_task(user, "square fn")
    for settings, field in (
        ({"max_parallel": 0}, "map.max_parallel"),
        ({"min_success_ratio": 1.5}, "map.min_success_ratio"),
        ({"items_per_task": True}, "map.items_per_task"),
        ({"items": "${pipeline.a} ${pipeline.b}"}, "map.items"),
        ({"items": list(range(10_001))}, "map.items"),
        ({"items": "${elsewhere.artifacts.numbers.url}"}, "map.items"),
        ({"items": "${pipeline.numbers}", "kwarg": ""}, "map"),
    ):
        step = _map_step(**{"items": [1], **settings})
        with pytest.raises(InvalidInput) as caught:
            engine.start_run(user=user, controller=make_controller(user, field), steps=[step])
        assert caught.value.details.get("parameter") == field, caught.value.message


def test_stopping_a_run_aborts_the_batches_still_running(user):
    run = _start(user, [_map_step([1, 2, 3, 4], max_parallel=2)])
    engine.stop_run(run.id)
    assert {b.status for b in _batches(run)} == {"aborted", "skipped"}
    assert {b.task.status for b in _batches(run) if b.task} == {"stopped"}
    assert _node(run, "square").status == "aborted"


def test_the_sweep_ends_a_map_whose_last_batch_event_was_missed(user):
    run = _start(user, [_map_step([1, 2])])
    for batch in _batches(run):
        task = batch.task
        execution.claim_task(task.id, task.attempt, "w")
        engine.report_items(task, [{"index": batch.map_index, "status": "completed"}])
        execution.finish_task(task, task.attempt, "completed")
    engine.advance(run.id)  # no hint: what the periodic sweep does
    assert _node(run, "square").status == "queued"


def _batch_end_queries(size):
    user = make_user()
    run = _start(user, [_map_step(list(range(size)), max_parallel=2)], name=f"m{size}")
    for batch in _batches(run)[:2]:
        _run_batch(run, batch)  # warm: the definition is decoded once per process
    batch = next(b for b in _batches(run) if b.status == "queued")
    task = batch.task
    execution.claim_task(task.id, task.attempt, "w")
    engine.report_items(task, [{"index": batch.map_index, "status": "completed"}])
    execution.finish_task(task, task.attempt, "completed")
    with CaptureQueriesContext(connection) as captured:
        engine.advance(run.id, changed_task_id=task.id, task_status="completed")
    return len(captured)


def test_the_end_of_a_batch_costs_the_same_statements_in_a_map_of_20_and_of_400():
    small, large = _batch_end_queries(20), _batch_end_queries(400)
    assert small == large and large <= 14, (small, large)


def test_a_step_resolved_for_its_callback_launches_with_the_values_it_returns(user):
    make_base_task(user, "a fn")
    make_base_task(user, "b fn", params={"source": "", "size": 1})
    steps = [
        {"name": "a", "base_task_name": "a fn"},
        {
            "name": "b",
            "base_task_name": "b fn",
            "parents": ["a"],
            "parameter_override": {"General/source": "${a.id}", "General/size": 3},
        },
    ]
    run = engine.start_run(
        user=user, controller=make_controller(user), steps=steps, driver="client"
    )
    with pytest.raises(Conflict, match=r"cannot resolve \$\{a.id\}"):
        engine.resolve_step(run, "b")  # a has no task yet
    engine.launch_step(run, "a")
    a = _node(run, "a")
    resolved = engine.resolve_step(run, "b")
    assert resolved["parameters"] == {"General/source": a.task_id, "General/size": 3}
    with pytest.raises(Conflict, match="already been launched"):
        engine.resolve_step(run, "a")
    engine.launch_step(run, "b", parameters={"General/source": "edited", "General/size": 9})
    b = _node(run, "b")
    assert b.task.hyperparameters["General"]["source"]["value"] == "edited"
    assert b.task.hyperparameters["General"]["size"]["value"] == "9"


def test_a_callbacks_values_must_be_scalars_and_a_local_launch_makes_a_draft(user):
    make_base_task(user, "a fn")
    run = engine.start_run(
        user=user,
        controller=make_controller(user),
        steps=[{"name": "a", "base_task_name": "a fn"}],
        driver="client",
    )
    engine.launch_step(run, "a", parameters={"General/x": {"a": 1}})
    a = _node(run, "a")
    assert a.status == "failed" and "must be a string, number" in a.message

    server_driven = engine.start_run(
        user=user,
        controller=make_controller(user, "server"),
        steps=[{"name": "a", "base_task_name": "a fn"}],
    )
    with pytest.raises(Conflict, match="only a run its controller drives"):
        engine.launch_step(server_driven, "a", local=True)
    with pytest.raises(Conflict, match="only a run its controller drives"):
        engine.launch_step(server_driven, "a", parameters={"General/x": 1})
    other = engine.start_run(
        user=user,
        controller=make_controller(user, "local"),
        steps=[{"name": "a", "base_task_name": "a fn"}],
        driver="client",
    )
    engine.launch_step(other, "a", local=True)
    a = _node(other, "a")
    assert a.status == "queued" and a.task.status == "created" and a.task.queue is None


def test_an_open_run_grows_with_its_script_and_ends_only_once_closed(user):
    make_base_task(user, "a fn")
    tasks = access.visible_tasks(user)
    run = engine.start_run(
        user=user, controller=make_controller(user), steps=[], open_definition=True
    )
    engine.add_steps(run, [{"name": "a", "base_task_name": "a fn"}], tasks)
    engine.advance(run.id)
    a = _node(run, "a")
    assert a.status == "queued"
    execution.claim_task(a.task.id, a.task.attempt, "w")
    execution.finish_task(a.task, a.task.attempt, "completed")
    engine.advance(run.id, changed_task_id=a.task_id, task_status="completed")
    assert PipelineRun.objects.get(pk=run.id).status == "running"  # still open
    with pytest.raises(InvalidInput, match="not an ancestor"):
        engine.add_steps(
            run,
            [
                {"name": "b", "base_task_name": "a fn"},
                {"name": "c", "base_task_name": "a fn", "parameter_override": {"x": "${b.id}"}},
            ],
            tasks,
        )
    engine.add_steps(
        run,
        [
            {
                "name": "b",
                "base_task_name": "a fn",
                "parents": ["a"],
                "parameter_override": {"x": "${a.id}"},
            }
        ],
        tasks,
    )
    engine.advance(run.id)
    b = _node(run, "b")
    assert b.task.hyperparameters["General"]["x"]["value"] == a.task_id
    execution.claim_task(b.task.id, b.task.attempt, "w")
    execution.finish_task(b.task, b.task.attempt, "completed")
    engine.advance(run.id, changed_task_id=b.task_id, task_status="completed")
    assert PipelineRun.objects.get(pk=run.id).status == "running"
    closed = engine.close_definition(run)
    assert closed.status == "completed"
    with pytest.raises(Conflict):
        engine.add_steps(run, [{"name": "d", "base_task_name": "a fn"}], tasks)
    with pytest.raises(Conflict, match="PipelineDecorator"):
        engine.rerun(run.id, user=user)
