from django.db.models import Max
from django.urls import reverse

from webapp.dashboard.plugin_api import TaskTab, is_running

from .figures import latest_plots


def get_context(request, task) -> dict:
    # The seq is read before the plots: one stored in between comes again from the feed,
    # and the page redraws it in place.
    seq = task.plots.aggregate(m=Max("seq"))["m"] or 0
    return {
        "plots": latest_plots(task.plots.order_by("title", "series", "iteration")),
        "seq": seq,
        "live": is_running(task),
        "since_url": reverse("api:task-results-plots-since", kwargs={"pk": task.id}),
    }


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
