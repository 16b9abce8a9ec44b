from webapp.dashboard.plugin_api import (
    PIPELINE_TERMINAL,
    TaskTab,
    json_safe,
    pipeline_run_of,
    run_view,
)


def is_controller(task) -> bool:
    return pipeline_run_of(task) is not None


def get_context(request, task) -> dict:
    run = pipeline_run_of(task)
    view = run_view(run)
    return {
        "run": run,
        "figure": json_safe(view.figure()),
        "progress": view.progress(),
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
