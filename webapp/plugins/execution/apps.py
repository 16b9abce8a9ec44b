from webapp.dashboard.registry import DashboardPlugin


class ExecutionPlugin(DashboardPlugin):
    name = "webapp.plugins.execution"
    label = "plugin_execution"
    verbose_name = "Execution tab"
