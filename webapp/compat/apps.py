from django.apps import AppConfig


class CompatConfig(AppConfig):
    name = "webapp.compat"
    label = "compat"
    verbose_name = "ClearML compatibility"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Imported here, not at the top: an AppConfig module is imported before the models.
        # Importing the handler modules registers every endpoint in the dispatch table.
        from webapp.core import hooks

        from . import handlers  # noqa: F401
        from .mirror import task_status_changed

        # Pipelines run by ClearML's own controller show as our pipeline runs (mirror.py).
        hooks.add_listener(hooks.STATUS_CHANGED, task_status_changed)
