from webapp.dashboard.plugin_api import DashboardPlugin


class HelloPlugin(DashboardPlugin):
    name = "pipelines_hello"
    label = "pipelines_hello"
    verbose_name = "Lineage tab (example plugin)"
