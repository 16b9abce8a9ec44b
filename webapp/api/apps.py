from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "webapp.api"
    label = "api"

    def ready(self):
        # Imported here, not at the top: an AppConfig module is imported before the models.
        from webapp.core.tasks import add_sweep_job

        from . import checks  # noqa: F401 - registers system checks
        from .idempotency import forget_old_requests

        # Stored answers to idempotent requests are forgotten once no retry can come.
        add_sweep_job(forget_old_requests)
