from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "webapp.core"
    label = "core"
    verbose_name = "Pipelines"

    def ready(self):
        # Imported here, not at the top: an AppConfig module is imported before the models.
        from . import checks, engine, hooks  # noqa: F401 - checks registers system checks

        # The engine advances a run whenever one of its steps changes status.
        hooks.add_listener(hooks.STATUS_CHANGED, engine.on_task_status_changed)
