from webapp.dashboard.plugin_api import TaskTab

from .figures import latest_plots


def get_context(request, task) -> dict:
    return {"plots": latest_plots(task.plots.order_by("title", "series", "iteration"))}


def count(task) -> int:
    return task.plots.values("title", "series").distinct().count()


tabs = [
    TaskTab(
        slug="plots",
        label="Plots",
        group="Results",
        order=70,
        template="plugins/plots/tab.html",
        get_context=get_context,
        badge=count,
        plotly=True,
    )
]
