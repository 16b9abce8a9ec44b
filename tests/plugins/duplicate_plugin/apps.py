from webapp.dashboard.registry import DashboardPlugin


class DuplicatePlugin(DashboardPlugin):
    name = "tests.plugins.duplicate_plugin"
    label = "duplicate_plugin"
