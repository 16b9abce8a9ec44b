"""ClearML-only data: the parts of ClearML's documents our core models have no column for.

Everything ClearML and we both know (status, script, hyperparameters, configuration, runtime,
tags, artifacts, console, scalars, plots) lives in the core models, so our dashboard shows a
ClearML task like our own. Only what ClearML alone uses is kept here.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from webapp.core.models import ApiKey, Project, Queue, Task, Worker, new_id


class TaskExtra(models.Model):
    """A task's ClearML-only fields (container, execution extras, models, output...)."""

    task = models.OneToOneField(
        Task, primary_key=True, on_delete=models.CASCADE, related_name="clearml"
    )
    # {image, arguments, setup_shell_script}
    container = models.JSONField(default=dict, blank=True)
    # execution minus queue and artifacts (those are Task.queue and Artifact rows)
    execution = models.JSONField(default=dict, blank=True)
    # ClearML's `models`: {input: [{name, model, updated}], output: [...]}
    task_models = models.JSONField(default=dict, blank=True)
    # {destination, ...}
    output = models.JSONField(default=dict, blank=True)
    # script fields with no place in Task.script (tag, the requirements object as sent)
    script = models.JSONField(default=dict, blank=True)
    last_worker = models.CharField(max_length=255, blank=True, default="")
    # A report's (a task of type `report`) markdown and the files it shows.
    report = models.TextField(blank=True, default="")
    report_assets = models.JSONField(default=list, blank=True)
    last_iteration = models.BigIntegerField(default=0)
    # ClearML's `make_public`: read-only at the ClearML door, for its own team too, until it
    # is made private again. It does not open the task to other teams (handlers/sharing.py).
    public = models.BooleanField(default=False)
    # The key that pulled the task from its queue or marked it started: an agent's, a
    # runner's, or a dev machine's. While the task runs, that key reads its secret-looking
    # parameters unmasked, since the SDK inside the task acts with it (see core/presenters.py).
    run_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # The task or worker key that created (or cloned) the task through the ClearML door. That
    # key may go on changing it after the SDK moves it under another parent (a pipeline step
    # re-parented to its controller); see core/access.py, `permits`.
    created_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The last `tasks.ping`: ClearML's `last_update` is the later of it and the task's own
    # (a ping is not a change of the task, so Task.last_update stays as it was).
    last_ping = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"ClearML fields of {self.task_id}"


class ProjectExtra(models.Model):
    """A project's ClearML-only fields: system tags (`hidden`, `pipeline`) and the like."""

    project = models.OneToOneField(
        Project, primary_key=True, on_delete=models.CASCADE, related_name="clearml"
    )
    tags = models.JSONField(default=list, blank=True)
    system_tags = models.JSONField(default=list, blank=True)
    default_output_destination = models.CharField(max_length=1024, blank=True, default="")

    def __str__(self) -> str:
        return f"ClearML fields of project {self.project_id}"


class RegisteredModel(models.Model):
    """A model registered through `models.*` (the SDK records trained weights' URIs here)."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    name = models.CharField(max_length=255, blank=True, default="")
    uri = models.CharField(max_length=2048, blank=True, default="")
    framework = models.CharField(max_length=100, blank=True, default="")
    design = models.JSONField(default=dict, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    comment = models.TextField(blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    system_tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    ready = models.BooleanField(default=False)
    public = models.BooleanField(default=False)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL)
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="registered_models"
    )
    parent = models.CharField(max_length=32, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(default=timezone.now)
    last_update = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"model {self.name} ({self.id[:8]})"


class StoredFile(models.Model):
    """An object on the ClearML file server: its path as the SDK named it, and its bytes'
    key in our artifact storage (so an artifact row can point at the same bytes)."""

    path_hash = models.CharField(max_length=64, unique=True)
    path = models.TextField()
    storage_key = models.CharField(max_length=1024)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    content_type = models.CharField(max_length=255, blank=True, default="")
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.path


class QueueExtra(models.Model):
    """A queue's ClearML-only fields: display name, tags, system tags and metadata."""

    queue = models.OneToOneField(
        Queue, primary_key=True, on_delete=models.CASCADE, related_name="clearml"
    )
    display_name = models.CharField(max_length=255, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    system_tags = models.JSONField(default=list, blank=True)
    # {key: {key, type, value}}
    metadata = models.JSONField(default=dict, blank=True)
    last_update = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"ClearML fields of queue {self.queue_id}"


class WorkerExtra(models.Model):
    """A worker's ClearML-only fields: its tags, system tags and the timeout it registered
    with (after which clearml-server stops listing it)."""

    worker = models.OneToOneField(
        Worker, primary_key=True, on_delete=models.CASCADE, related_name="clearml"
    )
    tags = models.JSONField(default=list, blank=True)
    system_tags = models.JSONField(default=list, blank=True)
    timeout = models.IntegerField(null=True, blank=True)
    # Who registered it and from where: clearml-server's worker `key` names its user, and
    # a queue's workers show their address.
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    ip = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return f"ClearML fields of worker {self.worker_id}"


class WorkerStatsReport(models.Model):
    """The machine statistics of one `workers.status_report` (clearml-server keeps them in
    Elasticsearch), for the workers' charts: kept CLEARML_WORKER_STATS_HOURS after they
    arrived, and at most CLEARML_WORKER_STATS_ROWS for one worker."""

    worker = models.CharField(max_length=255)
    # Milliseconds since the epoch, as the worker reported it.
    timestamp = models.BigIntegerField()
    received = models.DateTimeField(default=timezone.now)
    task = models.CharField(max_length=32, blank=True, default="")
    # {metric: value, or a list of values, one a device (its variant)}
    stats = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["worker", "timestamp"]),
            models.Index(fields=["timestamp"]),
            models.Index(fields=["received"]),
        ]

    def __str__(self) -> str:
        return f"stats of {self.worker} at {self.timestamp}"


class UserPreferences(models.Model):
    """A user's ClearML web preferences (`users.set_preferences`): what the web UI keeps of
    its layout, set key by key."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="clearml_preferences",
    )
    preferences = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"ClearML preferences of {self.user_id}"
