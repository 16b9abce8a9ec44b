from webapp.dashboard.plugin_api import DashboardPlugin


class PipelineGraphPlugin(DashboardPlugin):
    name = "webapp.plugins.pipeline_graph"
    label = "plugin_pipeline_graph"
    verbose_name = "Pipeline tab"
