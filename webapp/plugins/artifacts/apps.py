from webapp.dashboard.plugin_api import DashboardPlugin


class ArtifactsPlugin(DashboardPlugin):
    name = "webapp.plugins.artifacts"
    label = "plugin_artifacts"
    verbose_name = "Artifacts tab"
