from django.apps import AppConfig
from django.conf import settings
from django.core.signals import setting_changed


class DashboardConfig(AppConfig):
    name = "webapp.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"

    def ready(self):
        # Every installed plugin app is ready by now (Django builds all app configs
        # before calling any ready()), so the whole list is validated in one place.
        _load_plugins()
        # override_settings(DASHBOARD_PLUGINS=...) in tests must take effect, as Django's
        # own settings do; nothing changes settings at run time outside tests.
        setting_changed.connect(_on_setting_changed, dispatch_uid="dashboard-plugins")


def _load_plugins() -> None:
    from . import registry
    from .menu import CORE_MENU

    registry.install(registry.load(settings.DASHBOARD_PLUGINS, CORE_MENU))


def _on_setting_changed(*, setting, **kwargs) -> None:
    if setting in ("DASHBOARD_PLUGINS", "INSTALLED_APPS"):
        _load_plugins()
