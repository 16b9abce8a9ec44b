from webapp.dashboard.registry import DashboardPlugin


class ScalarsPlugin(DashboardPlugin):
    name = "webapp.plugins.scalars"
    label = "plugin_scalars"
    verbose_name = "Scalars tab"
