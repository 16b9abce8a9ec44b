from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "webapp.automation"
    label = "automation"
    verbose_name = "Schedules and triggers"

    def ready(self):
        # Imported here: an AppConfig module is imported before the models.
        from webapp.core import hooks
        from webapp.core.tasks import add_sweep_job

        from . import listeners, tasks, triggers

        hooks.add_listener(hooks.STATUS_CHANGED, listeners.on_task_status_changed)
        hooks.add_listener(hooks.TAGS_ADDED, triggers.on_tags_added)
        hooks.add_listener(hooks.SCALARS_REPORTED, triggers.on_scalars_reported)
        hooks.add_listener(hooks.ARTIFACT_READY, triggers.on_artifact_ready)
        add_sweep_job(tasks.sweep)
