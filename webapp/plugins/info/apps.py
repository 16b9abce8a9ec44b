from webapp.dashboard.plugin_api import DashboardPlugin


class InfoPlugin(DashboardPlugin):
    name = "webapp.plugins.info"
    label = "plugin_info"
    verbose_name = "Info tab"
