from django.urls import include, path
from rest_framework.routers import APIRootView, DefaultRouter

from webapp.automation import api as automation

from . import views, views_models, views_ops, views_pipelines, views_results, views_teams

app_name = "api"


class RootView(APIRootView):
    """The router's index of endpoints."""

    verbs = {"get": "identity.read"}


class Router(DefaultRouter):
    APIRootView = RootView


# No `.json` suffix routes: every response is JSON already, and the verbs take no `format`
# argument (a suffixed PATCH or action was a 500).
router = Router()
router.include_format_suffixes = False
router.register("projects", views.ProjectViewSet, basename="project")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("tasks", views_results.TaskResultsViewSet, basename="task-results")
router.register("artifacts", views.ArtifactViewSet, basename="artifact")
router.register("models", views_models.ModelViewSet, basename="model")
router.register("queues", views_ops.QueueViewSet, basename="queue")
router.register("workers", views_ops.WorkerViewSet, basename="worker")
router.register("pipelines", views_pipelines.PipelineRunViewSet, basename="pipeline")
router.register("teams", views_teams.TeamViewSet, basename="team")
router.register("schedules", automation.ScheduleViewSet, basename="schedule")
router.register("triggers", automation.TriggerViewSet, basename="trigger")

urlpatterns = [
    path("me/", views_ops.MeView.as_view(), name="me"),
    path("keys/", views_ops.ApiKeyView.as_view(), name="keys"),
    path("samples/<int:sample_id>/", views_ops.DebugSampleFileView.as_view(), name="sample"),
    path("", include(router.urls)),
]
