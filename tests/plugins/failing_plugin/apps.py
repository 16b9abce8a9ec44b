from webapp.dashboard.registry import DashboardPlugin


class FailingPlugin(DashboardPlugin):
    name = "tests.plugins.failing_plugin"
    label = "failing_plugin"
    verbose_name = "Failing test plugin"
