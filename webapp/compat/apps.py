from django.apps import AppConfig


class CompatConfig(AppConfig):
    name = "webapp.compat"
    label = "compat"
    verbose_name = "ClearML compatibility"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Importing the handler modules registers every endpoint in the dispatch table.
        from . import handlers  # noqa: F401
