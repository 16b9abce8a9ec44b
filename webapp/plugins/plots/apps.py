from webapp.dashboard.plugin_api import DashboardPlugin


class PlotsPlugin(DashboardPlugin):
    name = "webapp.plugins.plots"
    label = "plugin_plots"
    verbose_name = "Plots tab"
