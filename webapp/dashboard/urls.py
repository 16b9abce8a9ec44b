from django.contrib.auth import views as auth_views
from django.urls import path

from . import (
    actions,
    compare_views,
    model_views,
    ops_views,
    pipeline_views,
    rerun_views,
    views,
)

app_name = "dashboard"

TASK = "tasks/<str:task_id>/"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="registration/login.html"),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("projects/", views.projects, name="projects"),
    path("projects/<str:project_id>/", views.project_tasks, name="project"),
    path("tasks/status/", views.tasks_status, name="tasks_status"),
    path("compare/", compare_views.compare, name="compare"),
    path(TASK, views.task_detail, name="task"),
    path(TASK + "status/", views.task_status, name="task_status"),
    path(TASK + "console-lines/", views.console_lines, name="console_lines"),
    path(TASK + "console-search/", views.console_search, name="console_search"),
    path(TASK + "console-download/", views.console_download, name="console_download"),
    path(TASK + "samples/<int:sample_id>/", views.debug_sample_file, name="debug_sample"),
    path(TASK + "clone/", actions.clone, name="task_clone"),
    path(TASK + "enqueue/", actions.enqueue, name="task_enqueue"),
    path(TASK + "dequeue/", actions.dequeue, name="task_dequeue"),
    path(TASK + "abort/", actions.abort, name="task_abort"),
    path(TASK + "reset/", actions.reset, name="task_reset"),
    path(TASK + "archive/", actions.archive, name="task_archive"),
    path(TASK + "restore/", actions.restore, name="task_restore"),
    path(TASK + "delete/", actions.delete, name="task_delete"),
    path(TASK + "hyperparameters/", actions.hyperparameters, name="task_hyperparameters"),
    path(TASK + "publish/", actions.publish, name="task_publish"),
    path(TASK + "details/", actions.details, name="task_details"),
    # Plugin tabs come last so the fixed routes above win; their slugs are checked
    # against these names at start-up (registry.RESERVED_TAB_SLUGS).
    path(TASK + "<slug:slug>/", views.task_detail, name="task_tab"),
    path("pipelines/", pipeline_views.pipelines, name="pipelines"),
    path("pipelines/runs/<str:run_id>/", pipeline_views.pipeline_run, name="pipeline_run"),
    path(
        "pipelines/runs/<str:run_id>/state/",
        pipeline_views.pipeline_run_state,
        name="pipeline_run_state",
    ),
    path(
        "pipelines/runs/<str:run_id>/step/",
        pipeline_views.pipeline_run_step,
        name="pipeline_run_step",
    ),
    path(
        "pipelines/runs/<str:run_id>/abort/",
        pipeline_views.pipeline_run_abort,
        name="pipeline_run_abort",
    ),
    path(
        "pipelines/runs/<str:run_id>/rerun-from/",
        rerun_views.pipeline_rerun_from,
        name="pipeline_rerun_from",
    ),
    path("pipelines/runs/<str:run_id>/diff/", rerun_views.pipeline_diff, name="pipeline_diff"),
    path(
        "pipelines/runs/<str:run_id>/rerun/",
        pipeline_views.pipeline_run_rerun,
        name="pipeline_run_rerun",
    ),
    path("models/", model_views.models, name="models"),
    path("queues/", ops_views.queues, name="queues"),
    path(
        "queues/tasks/<str:task_id>/<str:direction>/",
        ops_views.queue_move,
        name="queue_move",
    ),
    path("workers/", ops_views.workers, name="workers"),
    path("keys/", ops_views.api_keys, name="keys"),
    path("keys/<str:prefix>/revoke/", ops_views.api_key_revoke, name="key_revoke"),
    path("vendor/plotly-<str:version>.min.js", views.plotly_js, name="plotly"),
]
