from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "webapp.core"
    label = "core"
    verbose_name = "Pipelines"

    def ready(self):
        from . import checks  # noqa: F401 - registers system checks
