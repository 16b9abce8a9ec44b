from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views, views_ops, views_pipelines

app_name = "api"

router = DefaultRouter()
router.register("projects", views.ProjectViewSet, basename="project")
router.register("tasks", views.TaskViewSet, basename="task")
router.register("artifacts", views.ArtifactViewSet, basename="artifact")
router.register("queues", views_ops.QueueViewSet, basename="queue")
router.register("workers", views_ops.WorkerViewSet, basename="worker")
router.register("pipelines", views_pipelines.PipelineRunViewSet, basename="pipeline")

urlpatterns = [
    path("me/", views_ops.MeView.as_view(), name="me"),
    path("keys/", views_ops.ApiKeyView.as_view(), name="keys"),
    path("samples/<int:sample_id>/", views_ops.DebugSampleFileView.as_view(), name="sample"),
    path("", include(router.urls)),
]
