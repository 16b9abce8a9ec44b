from webapp.dashboard.plugin_api import TaskTab


def get_context(request, task) -> dict:
    return {"artifacts": list(task.artifacts.order_by("name"))}


def count(task) -> int:
    return task.artifacts.count()


tabs = [
    TaskTab(
        slug="artifacts",
        label="Artifacts",
        order=30,
        template="plugins/artifacts/tab.html",
        get_context=get_context,
        badge=count,
    )
]
