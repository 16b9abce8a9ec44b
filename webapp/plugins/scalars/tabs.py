from webapp.dashboard.plugin_api import TaskTab

from .figures import scalar_figures


def get_context(request, task) -> dict:
    points = (
        task.scalars.order_by("title", "series", "iteration")
        .values_list("title", "series", "iteration", "value")
        .iterator(chunk_size=5000)
    )
    charts = scalar_figures(points)
    for index, chart in enumerate(charts):
        chart["id"] = f"scalar-{index}"
    return {"charts": charts, "single_values": list(task.single_values.order_by("name"))}


tabs = [
    TaskTab(
        slug="scalars",
        label="Scalars",
        group="Results",
        order=60,
        template="plugins/scalars/tab.html",
        get_context=get_context,
        plotly=True,
    )
]
