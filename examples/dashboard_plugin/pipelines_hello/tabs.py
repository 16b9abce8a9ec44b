"""What the plugin adds: one tab and one menu entry.

The tab lists the chain of tasks this one was cloned from and the tasks cloned from it,
which is handy when a pipeline step was cloned from a base task cloned from another.
"""

from webapp.dashboard.plugin_api import MenuItem, TaskTab, visible_tasks

MAX_DEPTH = 20  # parent chains are short; this only guards against a cycle


def ancestors(task) -> list:
    chain, seen, current = [], {task.pk}, task.parent
    while current is not None and current.pk not in seen and len(chain) < MAX_DEPTH:
        chain.append(current)
        seen.add(current.pk)
        current = current.parent
    return chain


def get_context(request, task) -> dict:
    mine = visible_tasks(request.user)
    return {
        "ancestors": [t for t in ancestors(task) if mine.filter(pk=t.pk).exists()],
        "children": mine.filter(parent=task).order_by("-created")[:50],
    }


tabs = [
    TaskTab(
        slug="lineage",
        label="Lineage",
        order=45,
        template="plugins/pipelines_hello/tab.html",
        get_context=get_context,
    )
]

menu_items = [
    MenuItem(slug="api-docs", label="API docs", url="/api/docs/", order=85, icon="?"),
]
