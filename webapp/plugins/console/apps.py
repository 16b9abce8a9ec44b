from webapp.dashboard.plugin_api import DashboardPlugin


class ConsolePlugin(DashboardPlugin):
    name = "webapp.plugins.console"
    label = "plugin_console"
    verbose_name = "Console tab"
