from webapp.core import secrets
from webapp.core.access import visible_tasks
from webapp.dashboard.registry import TaskTab


def get_context(request, task) -> dict:
    children = visible_tasks(request.user).filter(parent=task).order_by("-created")[:50]
    return {
        "children": children,
        "metrics": sorted((task.last_metrics or {}).items()),
        "runtime": sorted((task.runtime or {}).items()),
        # The stderr tail a worker reports can hold what a step printed: credentials masked.
        "status_message": secrets.mask_text(task.status_message, secrets.secret_values(task)),
    }


tabs = [
    TaskTab(
        slug="info",
        label="Info",
        order=40,
        template="plugins/info/tab.html",
        get_context=get_context,
    )
]
