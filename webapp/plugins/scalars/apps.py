from webapp.dashboard.plugin_api import DashboardPlugin


class ScalarsPlugin(DashboardPlugin):
    name = "webapp.plugins.scalars"
    label = "plugin_scalars"
    verbose_name = "Scalars tab"
