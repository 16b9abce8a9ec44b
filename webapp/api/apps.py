from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "webapp.api"
    label = "api"

    def ready(self):
        from . import checks  # noqa: F401 - registers system checks
