"""What one event costs the engine must not grow with the size of the run.

Query counts, not timings: a change that makes the engine read or write per node of the run
on each event shows up here as a count that differs between a small and a large run.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_base_task, make_controller, make_user
from webapp.core import engine, execution
from webapp.core.models import PipelineRun, Plot

pytestmark = pytest.mark.django_db


def _run(user, shape: str, size: int, base_name: str) -> PipelineRun:
    steps = [
        {
            "name": f"s{i}",
            "base_task_name": base_name,
            "parents": ([f"s{i - 1}"] if shape == "chain" else ["s0"]) if i else [],
        }
        for i in range(size)
    ]
    run = engine.start_run(
        user=user, controller=make_controller(user, f"{shape}{size}"), steps=steps
    )
    engine.advance(run.id)
    return run


def _queries(call) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured), [query["sql"] for query in captured]


_NODE_KEYS = ('"name" IN', '"name" =', '"task_id" =', '"id" =', '"id" IN')


def _bounded(sql: str) -> bool:
    """A statement on the nodes table picks nodes by key, not every node of the run."""
    if '"core_pipelinenode"' not in sql:
        return True
    where = sql.partition("WHERE")[2]
    return any(key in where for key in _NODE_KEYS)


def _step(run, name: str) -> tuple[int, int, list[str]]:
    """Claim and finish one step as a worker does, advancing after each like the hook (with
    the task's new status); the queries of the two advances."""
    task = run.nodes.select_related("task").get(name=name).task
    claimed = execution.claim_task(task.id, task.attempt, "w")[0]
    claim, claim_sql = _queries(
        lambda: engine.advance(run.id, changed_task_id=task.id, task_status=claimed.status)
    )
    finished = execution.finish_task(task, task.attempt, "completed")
    finish, finish_sql = _queries(
        lambda: engine.advance(run.id, changed_task_id=task.id, task_status=finished.status)
    )
    return claim, finish, claim_sql + finish_sql


@pytest.mark.parametrize("shape", ["chain", "wide"])
def test_one_step_costs_the_same_queries_in_a_50_and_a_500_step_run(shape):
    user = make_user()
    make_base_task(user, "s")
    costs = {}
    for size in (50, 500):
        run = _run(user, shape, size, "s")
        root = _step(run, "s0")  # a fan-out releases all its children here
        _step(run, "s1")  # warm: the run's definition is decoded once per process
        costs[size] = _step(run, "s2")[:2]
        statements = _step(run, "s3")[2]
        assert "core_plot" not in " ".join(statements), "the plot has its own job"
        for sql in statements:
            assert _bounded(sql), f"reads or writes every node of the run: {sql}"
        # Releasing a fan-out's children costs a few statements whatever their number (SQLite
        # caps the rows of one INSERT by its parameter limit: one more per ~25 tasks).
        assert root[1] <= 9 + size // 25, root
    assert costs[50] == costs[500]
    claim, finish = costs[500]
    # A claim only marks the node running (one conditional UPDATE while a refresh of the
    # plot is due); a finish launches at most one child in a chain.
    assert claim <= 1 and finish <= 9, costs


def test_the_fan_out_of_500_children_is_cloned_and_enqueued_in_a_few_statements():
    user = make_user()
    make_base_task(user, "s")
    run = _run(user, "wide", 501, "s")
    _, finish, _ = _step(run, "s0")
    assert finish <= 9 + 500 // 25
    assert run.nodes.filter(status="queued").count() == 500
    tasks = [node.task for node in run.nodes.select_related("task").exclude(name="s0")]
    assert {(t.status, t.attempt, t.queue.name) for t in tasks} == {("queued", 1, "default")}
    assert all(t.queue_entry is not None for t in tasks)


def test_the_count_of_open_nodes_ends_the_run_and_a_full_pass_repairs_it():
    user = make_user()
    make_base_task(user, "s")
    run = _run(user, "chain", 3, "s")
    assert PipelineRun.objects.get(pk=run.id).open_nodes == 3
    _step(run, "s0")
    assert PipelineRun.objects.get(pk=run.id).open_nodes == 2
    PipelineRun.objects.filter(pk=run.id).update(open_nodes=40)  # drifted
    engine.advance(run.id)  # what the periodic sweep does
    assert PipelineRun.objects.get(pk=run.id).open_nodes == 2
    _step(run, "s1")
    _step(run, "s2")
    run.refresh_from_db()
    assert run.status == "completed" and run.open_nodes == 0


def test_the_plot_is_refreshed_by_its_job_and_written_once_more_when_the_run_ends(
    django_capture_on_commit_callbacks,
):
    user = make_user()
    make_base_task(user, "s")
    run = _run(user, "chain", 3, "s")
    run.refresh_from_db()
    assert run.plot_due is not None  # asked for by the first pass
    assert not Plot.objects.filter(task_id=run.controller_id).exists()
    assert engine.refresh_plot(run.id) is True
    assert engine.refresh_plot(run.id) is False  # a second delivery finds nothing due
    flow = Plot.objects.get(task_id=run.controller_id, series="Execution Flow").figure
    statuses = {trace["name"] for trace in flow["data"] if trace.get("mode") == "markers"}
    assert statuses == {"queued", "pending"}
    for name in ("s0", "s1", "s2"):
        _step(run, name)
    run.refresh_from_db()
    assert run.status == "completed" and run.plot_due is None
    flow = Plot.objects.get(task_id=run.controller_id, series="Execution Flow").figure
    statuses = {trace["name"] for trace in flow["data"] if trace.get("mode") == "markers"}
    assert statuses == {"completed"}
    assert engine.refresh_plot(run.id) is False  # an ended run keeps its final plot


def test_a_cached_step_releases_its_children_in_the_same_pass():
    user = make_user()
    make_base_task(user, "a")
    make_base_task(user, "b")
    steps = [
        {"name": "a", "base_task_name": "a", "cache_executed_step": True},
        {"name": "b", "base_task_name": "b", "parents": ["a"]},
    ]
    first = engine.start_run(user=user, controller=make_controller(user, "p1"), steps=steps)
    engine.advance(first.id)
    _step(first, "a")
    second = engine.start_run(user=user, controller=make_controller(user, "p2"), steps=steps)
    engine.advance(second.id)
    nodes = {node.name: node.status for node in second.nodes.all()}
    assert nodes == {"a": "cached", "b": "queued"}
