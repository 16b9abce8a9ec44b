from webapp.dashboard.plugin_api import DashboardPlugin


class ModelsPlugin(DashboardPlugin):
    name = "webapp.plugins.models"
    label = "plugin_models"
    verbose_name = "Models tab"
