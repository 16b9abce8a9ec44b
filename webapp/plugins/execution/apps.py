from webapp.dashboard.plugin_api import DashboardPlugin


class ExecutionPlugin(DashboardPlugin):
    name = "webapp.plugins.execution"
    label = "plugin_execution"
    verbose_name = "Execution tab"
