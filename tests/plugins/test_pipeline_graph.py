from webapp.core import services
from webapp.core.choices import NodeStatus, TaskType
from webapp.core.models import PipelineNode, PipelineRun


def test_the_pipeline_tab_shows_only_on_a_controller_with_a_run(admin_client, admin_user, task):
    controller = services.create_task(
        user=admin_user, project_name="plugins", name="ctl", task_type=TaskType.CONTROLLER
    )
    assert b'data-tab="pipeline"' not in admin_client.get(f"/tasks/{controller.id}/").content
    run = PipelineRun.objects.create(
        controller=controller,
        steps=[
            {"name": "a", "parents": []},
            {"name": "b", "parents": ["a"], "parameter_override": {"General/x": "${a.id}"}},
        ],
    )
    PipelineNode.objects.create(
        run=run, name="a", task=task, status=NodeStatus.RUNNING, resolved_overrides={"k": "v"}
    )
    page = admin_client.get(f"/tasks/{controller.id}/pipeline/")
    assert page.status_code == 200
    figure = page.context["figure"]
    hover = " ".join(text for trace in figure["data"] for text in trace.get("hovertext", []))
    assert "k: v" in hover  # a launched node shows what it resolved
    assert "General/x: ${a.id}" in hover  # one not launched shows what it declared
    drawn = [
        c for trace in figure["data"] if trace.get("mode") == "markers" for c in trace["customdata"]
    ]
    assert ["a", task.id] in drawn  # [step name, task id]: a click opens the step's task
    progress = page.context["progress"]
    assert (progress["done"], progress["total"], progress["percent"]) == (0, 2, 0)
    assert progress["counts"] == {"running": 1, "pending": 1}
    assert b"data-live-url" in page.content
