"""Dashboard pages through Django's test client: access rules, lists, JSON feeds."""

import plotly
import pytest
from django.utils.html import escape

from webapp.core import engine, execution, services
from webapp.core.choices import NodeStatus, PipelineStatus, TaskType
from webapp.core.models import Artifact, PipelineNode, PipelineRun, Task


def test_pages_need_a_login(client, task):
    for path in ("/", "/projects/", f"/tasks/{task.id}/", "/queues/", "/keys/", "/pipelines/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/login/")


def test_projects_show_task_counts_by_status(admin_client, admin_user, task):
    running = services.create_task(
        user=admin_user, project_name="dash", name="r", start_running=True
    )
    services.mark_failed(running)
    services.enqueue_task(task, "default")
    project = admin_client.get("/projects/").context["page"][0]
    assert (project.name, project.n_tasks, project.n_queued, project.n_failed) == (
        "dash", 2, 1, 1,
    )  # fmt: skip


def test_task_table_filters_sorts_and_ignores_nonsense(admin_client, admin_user, task):
    services.create_task(
        user=admin_user, project_name="dash", name="other", task_type=TaskType.TESTING
    )
    url = f"/projects/{task.project_id}/"

    def names(query):
        return [t.name for t in admin_client.get(url + query).context["page"]]

    assert names("?sort=name") == ["other", "subject"]
    assert names("?sort=-name") == ["subject", "other"]
    assert names("?type=testing") == ["other"]
    assert names("?status=created&q=subj") == ["subject"]
    assert names(f"?q={task.id[:6]}") == ["subject"]
    assert sorted(names("?sort=drop table&status=bogus&page=99")) == ["other", "subject"]


def test_foreign_objects_are_404_and_missing_from_feeds(stranger_client, task):
    for path in (f"/tasks/{task.id}/", f"/tasks/{task.id}/info/", f"/projects/{task.project_id}/"):
        assert stranger_client.get(path).status_code == 404, path
    assert stranger_client.get(f"/tasks/status/?ids={task.id}").json() == {"tasks": {}}
    assert stranger_client.post(f"/tasks/{task.id}/abort/").status_code == 404
    assert list(stranger_client.get("/projects/").context["page"]) == []


def test_unknown_tab_is_404(admin_client, task):
    assert admin_client.get(f"/tasks/{task.id}/nope/").status_code == 404


def test_task_status_feed(admin_client, task):
    state = admin_client.get(f"/tasks/status/?ids={task.id},{'0' * 32}").json()["tasks"]
    assert state[task.id]["status"] == "created" and state[task.id]["active"] is False
    assert admin_client.get(f"/tasks/{task.id}/status/").json()["label"] == "Draft"


def test_plotly_is_served_from_the_installed_package(client):
    response = client.get(f"/vendor/plotly-{plotly.__version__}.min.js")
    assert response.status_code == 200
    assert "immutable" in response["Cache-Control"]
    assert b"plotly" in b"".join(response.streaming_content)[:2000].lower()
    old = client.get("/vendor/plotly-0.0.1.min.js")
    assert old.status_code == 302 and plotly.__version__ in old["Location"]


@pytest.fixture
def run(admin_user, task):
    controller = services.create_task(
        user=admin_user, project_name="dash", name="ctl", task_type=TaskType.CONTROLLER,
        start_running=True,
    )  # fmt: skip
    run = PipelineRun.objects.create(
        controller=controller,
        steps=[{"name": n, "parents": []} for n in ("a", "b", "c", "d")],
    )
    PipelineNode.objects.create(run=run, name="a", status=NodeStatus.COMPLETED, position=0)
    PipelineNode.objects.create(run=run, name="b", status=NodeStatus.FAILED, position=1)
    PipelineNode.objects.create(run=run, name="c", task=task, status=NodeStatus.RUNNING)
    return run


def test_pipelines_list_groups_runs_with_progress(admin_client, run):
    groups = admin_client.get("/pipelines/").context["groups"]
    assert [(g["name"], g["count"]) for g in groups] == [("ctl", 1)]
    progress = groups[0]["runs"][0]["progress"]
    assert (progress["done"], progress["total"], progress["percent"]) == (2, 4, 50)
    # the failed step is counted apart: an ended run with a failure never reads as all done
    assert progress["counts"] == {"completed": 1, "cached": 0, "failed": 1, "skipped": 0}
    assert [part["status"] for part in progress["segments"]] == ["completed", "failed"]
    assert progress["ended"] is None and progress["duration"] >= 0


def test_run_state_feed_changes_version_only_when_the_figure_changes(admin_client, run):
    url = f"/pipelines/runs/{run.id}/state/"
    first, again = admin_client.get(url).json(), admin_client.get(url).json()
    assert first["version"] == again["version"]
    assert first["progress"]["done"] == 2 and not first["terminal"]
    PipelineNode.objects.filter(run=run, name="c").update(status=NodeStatus.COMPLETED)
    assert admin_client.get(url).json()["version"] != first["version"]


def test_aborting_a_run_stops_it_and_its_controller(admin_client, run):
    response = admin_client.post(f"/pipelines/runs/{run.id}/abort/", follow=True)
    assert b"Pipeline run aborted." in response.content
    run.refresh_from_db()
    run.controller.refresh_from_db()
    assert run.status == PipelineStatus.STOPPED and run.controller.status == "stopped"


def test_run_again_is_offered_for_ended_server_runs_and_starts_a_new_one(admin_client, admin_user):
    base = services.create_task(user=admin_user, project_name="dash", name="step")
    controller = services.create_task(
        user=admin_user, project_name="dash", name="ctl", task_type=TaskType.CONTROLLER,
        start_running=True,
    )  # fmt: skip
    run = engine.start_run(
        user=admin_user, controller=controller, steps=[{"name": "a", "base_task_id": base.id}]
    )
    page = admin_client.get(f"/pipelines/runs/{run.id}/")
    assert b"Run again" not in page.content  # still running
    engine.stop_run(run.id)
    page = admin_client.get(f"/pipelines/runs/{run.id}/")
    assert b"Run again" in page.content
    response = admin_client.post(f"/pipelines/runs/{run.id}/rerun/")
    new_run = PipelineRun.objects.exclude(pk=run.pk).get(controller__parent=controller)
    assert response.status_code == 302 and response["Location"].endswith(f"/{new_run.id}/")
    assert new_run.status == PipelineStatus.RUNNING
    # a run its script drove (Python callbacks) can only be run again by that script
    PipelineRun.objects.filter(pk=run.pk).update(driver="client")
    assert b"Run again" not in admin_client.get(f"/pipelines/runs/{run.id}/").content
    refused = admin_client.post(f"/pipelines/runs/{run.id}/rerun/", follow=True)
    assert b"run the script again" in refused.content


def test_workers_page_marks_live_and_gone_workers(admin_client, task):
    from datetime import timedelta

    from django.utils import timezone

    from webapp.core.models import Worker

    execution.worker_heartbeat("w-live", ["default"])
    Worker.objects.create(name="w-gone", last_seen=timezone.now() - timedelta(hours=1))
    rows = {r["worker"].name: r["alive"] for r in admin_client.get("/workers/").context["rows"]}
    assert rows == {"w-live": True, "w-gone": False}


def test_a_function_step_shows_its_call_and_returns_and_a_fan_out_its_items(
    admin_client, admin_user
):
    base = services.create_task(user=admin_user, project_name="dash", name="fn")
    controller = services.create_task(
        user=admin_user, project_name="dash", name="fns", task_type=TaskType.CONTROLLER,
        start_running=True,
    )  # fmt: skip
    function = {
        "name": "square",
        "kwargs": {"api_token": "t0p", "factor": 2},
        "returns": ["y"],
        "parameters": ["x", "factor", "api_token"],
    }
    steps = [
        {"name": "one", "base_task_id": base.id, "function": function},
        {
            "name": "many",
            "base_task_id": base.id,
            "parents": ["one"],
            "function": function,
            "map": {"kwarg": "x", "items": [1, 2, 3], "min_success_ratio": 0.5},
        },
    ]
    run = engine.start_run(user=admin_user, controller=controller, steps=steps)
    engine.advance(run.id)
    one = run.nodes.select_related("task").get(name="one")
    execution.claim_task(one.task.id, one.task.attempt, "w")
    execution.finish_task(one.task, one.task.attempt, "completed")
    engine.advance(run.id, changed_task_id=one.task_id, task_status="completed")
    batch = run.nodes.exclude(map_step="").select_related("task").first()
    execution.claim_task(batch.task.id, batch.task.attempt, "w")
    engine.report_items(batch.task, [{"index": 0, "status": "completed", "values": {"y": 1}}])

    page = admin_client.get(f"/pipelines/runs/{run.id}/").content.decode()
    assert "square(factor=2, api_token=********)" in page and "returns y" in page
    assert "t0p" not in page
    assert "map over x: 3 items, 1 completed, 0 failed" in page
    groups = admin_client.get("/pipelines/").context["groups"]
    progress = next(g for g in groups if g["name"] == "fns")["runs"][0]["progress"]
    assert (progress["done"], progress["total"]) == (1, 2)  # its batches are not steps
    assert progress["counts"]["completed"] == 1
    hover = "".join(
        text
        for trace in admin_client.get(f"/pipelines/runs/{run.id}/state/").json()["figure"]["data"]
        for text in trace.get("hovertext") or []
    )
    assert "function: square(factor=2, api_token=********)" in hover
    assert "map over x: 3 items, 1 completed, 0 failed (min_success_ratio 0.5)" in hover


def test_the_step_panel_shows_one_step_masked_with_its_resources_and_console(admin_client, run):
    node = PipelineNode.objects.get(run=run, name="c")
    node.resolved_overrides = {"General/api_token": "t0psecret", "General/lr": "0.1"}
    node.decision = {
        "outcome": "ran",
        "code": "parameter_changed",
        "reason": "parameter `General/lr` changed from 0.2 to 0.1",
    }
    node.save()
    Task.objects.filter(pk=node.task_id).update(
        hyperparameters={"General": {"api_token": {"value": "t0psecret", "type": "str"}}},
        resource_cpu_seconds=1.5,
        resource_peak_rss_bytes=64 * 1024 * 1024,
        last_metrics={"loss/train": {"iteration": 3, "value": 0.5, "raw": "0.5"}},
    )
    execution.append_log(Task.objects.get(pk=node.task_id), [{"text": "epoch 1 done"}])
    Artifact.objects.create(
        task_id=node.task_id, name="model_weights", kind="file", filename="w.bin", size=2048,
        url="http://127.0.0.1/files/x/w.bin", sha256="ab" * 32, state="ready",
    )  # fmt: skip
    url = f"/pipelines/runs/{run.id}/step/"
    page = admin_client.get(url, {"name": "c"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "t0psecret" not in text and "General/api_token" in text
    assert "epoch 1 done" in text and "General/lr" in text
    assert "ran in this run" in text
    assert "loss/train" in text and "@ 3" in text  # its last metrics
    assert "model_weights" in text and "2 KB" in text and "abababababab" in text
    assert "1.5s" in text and "64.0 MB" in text  # what it used
    # and why it ran, as the engine decided when it launched it
    assert "Why" in text and escape(node.decision["reason"]) in text
    # a step that has not run says so; a name the run does not have is not found
    assert "not run yet" in admin_client.get(url, {"name": "d"}).content.decode()
    assert admin_client.get(url, {"name": "nope"}).status_code == 404
    assert admin_client.get(url).status_code == 404


def test_the_step_panel_and_live_feed_are_not_found_for_who_cannot_see_the_run(
    stranger_client, run
):
    for path in (f"/pipelines/runs/{run.id}/step/?name=c", f"/pipelines/runs/{run.id}/state/"):
        assert stranger_client.get(path).status_code == 404, path


def test_the_run_page_shows_progress_by_kind_of_end_and_what_the_steps_used(admin_client, run):
    task = PipelineNode.objects.get(run=run, name="c").task
    Task.objects.filter(pk=task.pk).update(
        resource_cpu_seconds=2.0, resource_wall_seconds=3.0, started=task.created
    )
    page = admin_client.get(f"/pipelines/runs/{run.id}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-count="failed"' in text and "1 failed" in text
    assert "2/4 steps ended" in text
    assert "cpu 2.0s" in text  # summed over the steps that ran
    assert page.context["page"].totals["measured_steps"] == 1
