from webapp.dashboard.plugin_api import TaskTab


def get_context(request, task) -> dict:
    return {
        "output_models": list(task.output_models.order_by("name")),
        "input_models": list(task.input_models.select_related("model__task").order_by("name")),
    }


def count(task) -> int:
    return task.output_models.count() + task.input_models.count()


tabs = [
    TaskTab(
        slug="models",
        label="Models",
        order=35,
        template="plugins/models/tab.html",
        get_context=get_context,
        badge=count,
    )
]
