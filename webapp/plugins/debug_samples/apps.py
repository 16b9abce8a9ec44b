from webapp.dashboard.plugin_api import DashboardPlugin


class DebugSamplesPlugin(DashboardPlugin):
    name = "webapp.plugins.debug_samples"
    label = "plugin_debug_samples"
    verbose_name = "Debug samples tab"
