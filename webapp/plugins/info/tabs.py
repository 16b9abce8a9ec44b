from webapp.dashboard.plugin_api import TaskTab, read_task, visible_tasks


def get_context(request, task) -> dict:
    children = visible_tasks(request.user).filter(parent=task).order_by("-created")[:50]
    return {
        "children": children,
        "metrics": sorted((task.last_metrics or {}).items()),
        "runtime": sorted((task.runtime or {}).items()),
        # The stderr tail a worker reports can hold what a step printed: credentials masked.
        "status_message": read_task(task).status_message,
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
