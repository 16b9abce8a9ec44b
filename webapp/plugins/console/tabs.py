from django.db.models import Max

from webapp.dashboard.plugin_api import TaskTab

# A console can hold 200,000 lines; the page starts this far from the end.
TAIL_LINES = 2000


def get_context(request, task) -> dict:
    last = task.log_lines.aggregate(m=Max("seq"))["m"]
    start = -1 if last is None else max(-1, last - TAIL_LINES)
    return {"since": start, "skipped": start >= 0}


tabs = [
    TaskTab(
        slug="console",
        label="Console",
        order=50,
        template="plugins/console/tab.html",
        get_context=get_context,
    )
]
