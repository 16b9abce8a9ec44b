from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic.base import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from webapp.api.views_ops import ArtifactFileView
from webapp.compat import links as clearml_links
from webapp.compat.fileserver import files_view as clearml_files
from webapp.dashboard import views as dashboard

urlpatterns = [
    path("healthz", dashboard.healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page links (the API docs, a JSON answer).
    path("favicon.ico", RedirectView.as_view(url=static("dashboard/favicon.svg")), name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("webapp.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("files/<str:artifact_id>/<path:filename>", ArtifactFileView.as_view(), name="file"),
    # ClearML wire compatibility: its REST API and its file server (both with and without a
    # trailing slash: the SDK posts uploads to the bare files host URL).
    path("clearml-api/", include("webapp.compat.urls")),
    re_path(r"^clearml-files(?:/(?P<path>.*))?$", clearml_files, name="clearml-files"),
    # The web links the ClearML SDK prints (results page, pipeline page).
    re_path(
        r"^projects/(?P<project_id>[^/]+)/tasks/(?P<task_id>[0-9a-f]{32})(?:/(?P<rest>.*))?$",
        clearml_links.task_page,
        name="clearml-task-page",
    ),
    re_path(
        r"^pipelines/(?P<project_id>[^/]+)/experiments/(?P<task_id>[0-9a-f]{32})(?:/(?P<rest>.*))?$",
        clearml_links.pipeline_page,
        name="clearml-pipeline-page",
    ),
    path("", include("webapp.automation.urls")),
    path("", include("webapp.dashboard.urls")),
]

handler404 = "webapp.api.errors.not_found"
handler500 = "webapp.api.errors.server_error"
