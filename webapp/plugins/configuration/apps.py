from webapp.dashboard.plugin_api import DashboardPlugin


class ConfigurationPlugin(DashboardPlugin):
    name = "webapp.plugins.configuration"
    label = "plugin_configuration"
    verbose_name = "Configuration tab"
