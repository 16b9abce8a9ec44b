from webapp.dashboard.registry import DashboardPlugin


class ConsolePlugin(DashboardPlugin):
    name = "webapp.plugins.console"
    label = "plugin_console"
    verbose_name = "Console tab"
