"""Dashboard pages through Django's test client: access rules, lists, JSON feeds."""

import plotly
import pytest

from webapp.core import execution, services
from webapp.core.choices import NodeStatus, PipelineStatus, TaskType
from webapp.core.models import PipelineNode, PipelineRun


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
    assert groups[0]["runs"][0]["progress"] == {"done": 2, "total": 4, "percent": 50}


def test_run_state_feed_changes_version_only_when_the_figure_changes(admin_client, run):
    url = f"/pipelines/runs/{run.id}/state/"
    first, again = admin_client.get(url).json(), admin_client.get(url).json()
    assert first["version"] == again["version"]
    assert first["progress"]["done"] == 2 and not first["terminal"]
    PipelineNode.objects.filter(run=run, name="c").update(status=NodeStatus.COMPLETED)
    assert admin_client.get(url).json()["version"] != first["version"]


def test_aborting_a_run_uses_the_engine_or_else_aborts_the_controller(
    admin_client, run, monkeypatch
):
    from webapp.core import engine

    calls = []
    monkeypatch.setattr(engine, "stop_run", lambda run_id, reason: calls.append(run_id))
    admin_client.post(f"/pipelines/runs/{run.id}/abort/")
    assert calls == [run.id]
    monkeypatch.delattr(engine, "stop_run")
    admin_client.post(f"/pipelines/runs/{run.id}/abort/")
    run.controller.refresh_from_db()
    assert run.controller.status == "stopped"


def test_run_again_is_offered_only_when_the_engine_can(admin_client, run, monkeypatch):
    from webapp.core import engine

    PipelineRun.objects.filter(pk=run.pk).update(status=PipelineStatus.COMPLETED)
    page = admin_client.get(f"/pipelines/runs/{run.id}/")
    assert (b"Run again" in page.content) == hasattr(engine, "rerun")
    if not hasattr(engine, "rerun"):
        response = admin_client.post(f"/pipelines/runs/{run.id}/rerun/", follow=True)
        assert b"cannot run a pipeline again" in response.content


def test_workers_page_marks_live_and_gone_workers(admin_client, task):
    from datetime import timedelta

    from django.utils import timezone

    from webapp.core.models import Worker

    execution.worker_heartbeat("w-live", ["default"])
    Worker.objects.create(name="w-gone", last_seen=timezone.now() - timedelta(hours=1))
    rows = {r["worker"].name: r["alive"] for r in admin_client.get("/workers/").context["rows"]}
    assert rows == {"w-live": True, "w-gone": False}
