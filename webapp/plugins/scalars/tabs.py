from django.urls import reverse

from webapp.dashboard.plugin_api import TaskTab, is_running


def get_context(request, task) -> dict:
    # The page draws the charts from the API (the task's buckets, then what is new), so
    # the tab itself reads no point.
    source = {
        "label": task.name,
        "charts_url": reverse("api:task-results-scalar-charts", kwargs={"pk": task.id}),
        "since_url": reverse("api:task-results-scalars-since", kwargs={"pk": task.id}),
        "live": is_running(task),
    }
    return {"sources": [source], "prefetch": source["charts_url"]}


def count(task) -> int:
    return task.scalar_series.count()


tabs = [
    TaskTab(
        slug="scalars",
        label="Scalars",
        group="Results",
        order=60,
        template="plugins/scalars/tab.html",
        get_context=get_context,
        badge=count,
        plotly=True,
    )
]
