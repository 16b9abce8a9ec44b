"""What a dashboard plugin may use: the whole of it. Built-in plugins (webapp/plugins/)
import only this module (a test keeps it so), and so should yours: the modules behind it
can change, this one keeps its names.

- `DashboardPlugin`, `TaskTab`, `MenuItem`: declaring a plugin, its tabs and menu entries.
- `json_safe`: a figure dict made safe to embed (NaN and infinities become gaps).
- `task_actions(task)`: which task buttons its state allows.
- `visible_tasks(user)`: the tasks a user may see.
- `read_task(task)`: a task's parameters, configuration and status message as the page
  shows them, secret values masked.
- `pipeline_run_of(task)`: the pipeline run a controller task drives, or None;
  `run_view(run)`: that run as shown (`.figure()`, `.rows()`, `.progress()`).
- `PIPELINE_TERMINAL`: the statuses of a run that has ended.
- `media_kind(content_type)`: how a debug sample shows (image, audio, video, html).
- `is_running(task)`: whether the task may still report results (queued or running), so a
  tab follows it live.
"""

from webapp.core.choices import ACTIVE_STATES, PIPELINE_TERMINAL

from .permissions import task_actions
from .plotting import json_safe
from .registry import DashboardPlugin, MenuItem, TaskTab

__all__ = [
    "PIPELINE_TERMINAL",
    "DashboardPlugin",
    "MenuItem",
    "TaskTab",
    "is_running",
    "json_safe",
    "media_kind",
    "pipeline_run_of",
    "read_task",
    "run_view",
    "task_actions",
    "visible_tasks",
]

# The functions below import what they call on first use: a plugin's apps.py imports this
# module before Django has loaded the models those need.


def is_running(task) -> bool:
    """Queued or running: its results may still grow."""
    return task.status in ACTIVE_STATES


def visible_tasks(user):
    """The tasks `user` may see (a queryset)."""
    from webapp.core.access import visible_tasks

    return visible_tasks(user)


def read_task(task):
    """`task`'s hyperparameters, configuration and status message as a page shows them."""
    from webapp.core.presenters import read_task

    return read_task(task)


def pipeline_run_of(task):
    """The pipeline run `task` controls, or None."""
    from webapp.core.models import PipelineRun

    return PipelineRun.objects.filter(controller=task).first()


def run_view(run):
    """`run` as shown: `.figure()`, `.table()`, `.rows()`, `.progress()`."""
    from webapp.core.engine import run_view

    return run_view(run)


def media_kind(content_type: str) -> str:
    """image, audio, video or html: how a reported media file is shown."""
    from webapp.core.events import media_kind

    return media_kind(content_type)
