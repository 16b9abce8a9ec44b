from webapp.core.choices import PIPELINE_TERMINAL
from webapp.core.models import PipelineRun
from webapp.dashboard.pipeline_views import run_view
from webapp.dashboard.plotting import json_safe
from webapp.dashboard.registry import TaskTab


def _run(task):
    return PipelineRun.objects.filter(controller=task).first()


def is_controller(task) -> bool:
    return PipelineRun.objects.filter(controller=task).exists()


def get_context(request, task) -> dict:
    run = _run(task)
    view = run_view(run)
    return {
        "run": run,
        "figure": json_safe(view["figure"]),
        "progress": view["progress"],
        "live": run.status not in PIPELINE_TERMINAL,
    }


tabs = [
    TaskTab(
        slug="pipeline",
        label="Pipeline",
        order=55,
        template="plugins/pipeline_graph/tab.html",
        get_context=get_context,
        visible=is_controller,
        plotly=True,
    )
]
