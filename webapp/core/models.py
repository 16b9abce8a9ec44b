"""The domain: projects, tasks and what they produce, queues, workers, keys, pipelines.

Models own their fields and small state helpers; anything that changes several rows or
starts background work is a verb in services.py.
"""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from .choices import (
    ApiKeyKind,
    ArtifactKind,
    ArtifactState,
    LogStream,
    NodeStatus,
    PipelineDefinition,
    PipelineDriver,
    PipelineStatus,
    TaskStatus,
    TaskType,
)


def new_id() -> str:
    return uuid.uuid4().hex


class Team(models.Model):
    """A group of users sharing projects. Who sees what is decided in access.py."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    """A named folder of tasks; `a/b` names nest in the UI.

    A project belongs to a team, or (team empty) is personal to the user who created it.
    """

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    created = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # PROTECT: deleting a team must not silently turn its projects into someone's personal
    # ones (or orphan them); move or delete the projects first.
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.PROTECT, related_name="projects"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Queue(models.Model):
    """A named queue; its broker queue has the same name."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    name = models.CharField(max_length=100, unique=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    """One unit of work: a script with parameters, run once per attempt by a worker."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=32, choices=TaskType.choices, default=TaskType.TRAINING)
    status = models.CharField(
        max_length=16, choices=TaskStatus.choices, default=TaskStatus.CREATED, db_index=True
    )
    status_reason = models.CharField(max_length=255, blank=True, default="")
    status_message = models.TextField(blank=True, default="")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    tags = models.JSONField(default=list, blank=True)
    system_tags = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True, default="")
    # {entry_point, working_dir, code, repository, branch, commit, diff, requirements, binary}
    script = models.JSONField(default=dict, blank=True)
    # {section: {name: {value: str, type: str, description: str}}}
    hyperparameters = models.JSONField(default=dict, blank=True)
    # {name: {value: str, type: str, description: str}}
    configuration = models.JSONField(default=dict, blank=True)
    runtime = models.JSONField(default=dict, blank=True)
    last_metrics = models.JSONField(default=dict, blank=True)
    queue = models.ForeignKey(Queue, null=True, blank=True, on_delete=models.SET_NULL)
    worker = models.CharField(max_length=255, blank=True, default="")
    attempt = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    time_limit = models.FloatField(null=True, blank=True, help_text="seconds")
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    archived = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(default=timezone.now, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    completed = models.DateTimeField(null=True, blank=True)
    last_update = models.DateTimeField(default=timezone.now, db_index=True)
    # What the last attempt's step process group used, as its worker measured it when the
    # step ended (None: not run by a worker that measures, or GPU time without nvidia-smi).
    resource_cpu_seconds = models.FloatField(null=True, blank=True)
    resource_peak_rss_bytes = models.BigIntegerField(null=True, blank=True)
    resource_wall_seconds = models.FloatField(null=True, blank=True)
    resource_gpu_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [
            models.Index(fields=["project", "name", "-created"]),
            models.Index(fields=["status", "last_heartbeat"]),
            # The task list: not archived, optionally one status, newest first.
            models.Index(fields=["archived", "-created"]),
            models.Index(fields=["archived", "status", "-created"]),
            models.Index(fields=["project", "archived", "-created"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id[:8]})"

    def get_absolute_url(self) -> str:
        return reverse("api:task-detail", kwargs={"pk": self.id})

    @property
    def is_draft(self) -> bool:
        return self.status == TaskStatus.CREATED


class Artifact(models.Model):
    """Bytes a task produced. `pending` until the server has verified size and sha256."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, choices=ArtifactKind.choices)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, blank=True, default="")
    storage_key = models.CharField(max_length=512, blank=True, default="")
    url = models.CharField(max_length=1024, blank=True, default="")
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    preview = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=16, choices=ArtifactState.choices, default=ArtifactState.PENDING
    )
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task", "name"]
        constraints = [
            models.UniqueConstraint(fields=["task", "name"], name="artifact_unique_per_task")
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.task_id[:8]}"

    @property
    def is_ready(self) -> bool:
        return self.state == ArtifactState.READY


class QueueEntry(models.Model):
    """A task waiting in a queue; the order is `position`, lowest first."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="entries")
    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="queue_entry")
    position = models.FloatField(default=0.0, db_index=True)
    added = models.DateTimeField(default=timezone.now)
    last_published = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["queue", "position", "added"]
        verbose_name_plural = "queue entries"

    def __str__(self) -> str:
        return f"{self.task_id[:8]} in {self.queue.name}"


class Worker(models.Model):
    """A step worker as it last reported itself."""

    name = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list, blank=True)
    hostname = models.CharField(max_length=255, blank=True, default="")
    pid = models.IntegerField(null=True, blank=True)
    current_task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    registered = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A bearer key. Only its sha256 is stored; the secret is shown once, at creation."""

    prefix = models.CharField(max_length=16, unique=True)
    hashed_secret = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    kind = models.CharField(max_length=16, choices=ApiKeyKind.choices, default=ApiKeyKind.USER)
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True, default="")
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField(null=True, blank=True)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.kind} key {self.prefix} of {self.user}"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked is None and (self.expires is None or self.expires > now)


class LogLine(models.Model):
    """One console line of a task, in order."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="log_lines")
    seq = models.BigIntegerField()
    stream = models.CharField(max_length=8, choices=LogStream.choices, default=LogStream.STDOUT)
    text = models.TextField()
    timestamp = models.DateTimeField(default=timezone.now)
    # What a ClearML client says of a line: the iteration and metric it was logged under.
    iteration = models.BigIntegerField(null=True, blank=True)
    metric = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["task", "seq"]
        constraints = [models.UniqueConstraint(fields=["task", "seq"], name="logline_seq")]

    def __str__(self) -> str:
        return f"{self.task_id[:8]}#{self.seq}"


class Scalar(models.Model):
    """A point of a scalar series (title/series) at an iteration."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="scalars")
    title = models.CharField(max_length=255)
    series = models.CharField(max_length=255)
    iteration = models.BigIntegerField()
    value = models.FloatField(null=True)
    timestamp = models.DateTimeField(default=timezone.now)
    # The task's report batch that last wrote this point (events.next_seq): a page that has
    # seen batch N asks for seq > N, one range of the (task, seq) index.
    seq = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["task", "title", "series", "iteration"]
        # Upserting by this key makes a retried report batch harmless.
        constraints = [
            models.UniqueConstraint(
                fields=["task", "title", "series", "iteration"], name="scalar_upsert_key"
            )
        ]
        indexes = [models.Index(fields=["task", "seq"], name="scalar_task_seq")]

    def __str__(self) -> str:
        return f"{self.title}/{self.series}@{self.iteration}"


class Plot(models.Model):
    """A Plotly figure, upserted by (task, title, series, iteration)."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="plots")
    title = models.CharField(max_length=255)
    series = models.CharField(max_length=255)
    iteration = models.BigIntegerField(default=0)
    figure = models.JSONField(default=dict)
    timestamp = models.DateTimeField(default=timezone.now)
    seq = models.BigIntegerField(default=0)  # as Scalar.seq

    class Meta:
        ordering = ["task", "title", "series", "iteration"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "title", "series", "iteration"], name="plot_upsert_key"
            )
        ]
        indexes = [models.Index(fields=["task", "seq"], name="plot_task_seq")]

    def __str__(self) -> str:
        return f"{self.title}/{self.series}@{self.iteration}"


class DebugSample(models.Model):
    """Media a task reported (an image, audio, video or an HTML page): its bytes in
    artifact storage, or a URL where they already are (`report_media(url=...)`)."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="debug_samples")
    title = models.CharField(max_length=255)
    series = models.CharField(max_length=255)
    iteration = models.BigIntegerField(default=0)
    storage_key = models.CharField(max_length=512, blank=True, default="")
    url = models.CharField(max_length=2048, blank=True, default="")
    # Where another client stored media that this server can neither fetch nor link (an
    # s3:// object or a file path ClearML's SDK reported): shown as text, never followed.
    location = models.CharField(max_length=2048, blank=True, default="")
    content_type = models.CharField(max_length=100, default="image/png")
    timestamp = models.DateTimeField(default=timezone.now)
    seq = models.BigIntegerField(default=0)  # as Scalar.seq

    class Meta:
        ordering = ["task", "title", "series", "iteration"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "title", "series", "iteration"], name="sample_upsert_key"
            )
        ]
        indexes = [models.Index(fields=["task", "seq"], name="sample_task_seq")]

    def __str__(self) -> str:
        return f"{self.title}/{self.series}@{self.iteration}"


class SingleValue(models.Model):
    """A value reported once for a whole run (`report_single_value`: an accuracy, a mAP),
    kept by name rather than as a point of a series."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="single_values")
    name = models.CharField(max_length=255)
    value = models.FloatField(null=True)
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task", "name"]
        constraints = [
            models.UniqueConstraint(fields=["task", "name"], name="single_value_per_task")
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class TrainedModel(models.Model):
    """A model a task produced (ClearML's output model): its weights in artifact storage,
    `pending` until the bytes are verified, like an artifact. The server never loads them."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="output_models")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=255)
    framework = models.CharField(max_length=64, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    comment = models.TextField(blank=True, default="")
    # The configuration (ClearML's design) and label enumeration it was trained with.
    config = models.JSONField(default=dict, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    filename = models.CharField(max_length=255, blank=True, default="")
    package = models.BooleanField(default=False, help_text="the weights are a zip of files")
    iteration = models.BigIntegerField(null=True, blank=True)
    storage_key = models.CharField(max_length=512, blank=True, default="")
    url = models.CharField(max_length=1024, blank=True, default="")
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(
        max_length=16, choices=ArtifactState.choices, default=ArtifactState.PENDING
    )
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["task", "name"], name="model_unique_per_task")
        ]

    def __str__(self) -> str:
        return f"model {self.name} of {self.task_id[:8]}"

    @property
    def is_ready(self) -> bool:
        return self.state == ArtifactState.READY


class ModelInput(models.Model):
    """A model a task used (ClearML's input model, `task.connect(InputModel(...))`)."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="input_models")
    model = models.ForeignKey(TrainedModel, on_delete=models.CASCADE, related_name="used_by")
    name = models.CharField(max_length=255)
    connected = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["task", "name"]
        constraints = [
            models.UniqueConstraint(fields=["task", "name"], name="input_model_name_per_task")
        ]

    def __str__(self) -> str:
        return f"{self.name} of {self.task_id[:8]}"


class ScalarSeries(models.Model):
    """One scalar series of a task and the width of its chart buckets (scalar_rollup.py).

    Kept as points arrive, so a chart of a million points reads at most MAX_BUCKETS
    buckets per series instead of its points.
    """

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="scalar_series")
    title = models.CharField(max_length=255)
    series = models.CharField(max_length=255)
    # Iterations per bucket, a power of two; doubled (buckets merged in pairs) as it grows.
    bucket_width = models.BigIntegerField(default=1)
    first_iteration = models.BigIntegerField()
    last_iteration = models.BigIntegerField()
    points = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["task", "title", "series"]
        verbose_name_plural = "scalar series"
        constraints = [
            models.UniqueConstraint(fields=["task", "title", "series"], name="scalar_series_key")
        ]

    def __str__(self) -> str:
        return f"{self.title}/{self.series}"


class ScalarBucket(models.Model):
    """The points of a series with iteration // bucket_width == index, summarised by its
    first, lowest, highest and last point (M4): drawn, they look like every point."""

    series = models.ForeignKey(ScalarSeries, on_delete=models.CASCADE, related_name="buckets")
    index = models.BigIntegerField()
    count = models.BigIntegerField(default=0)
    first_iteration = models.BigIntegerField()
    first_value = models.FloatField(null=True)
    first_time = models.FloatField()
    min_iteration = models.BigIntegerField()
    min_value = models.FloatField(null=True)
    min_time = models.FloatField()
    max_iteration = models.BigIntegerField()
    max_value = models.FloatField(null=True)
    max_time = models.FloatField()
    last_iteration = models.BigIntegerField()
    last_value = models.FloatField(null=True)
    last_time = models.FloatField()

    class Meta:
        ordering = ["series", "index"]
        constraints = [
            models.UniqueConstraint(fields=["series", "index"], name="scalar_bucket_key")
        ]

    def __str__(self) -> str:
        return f"{self.series_id}#{self.index}"


class ReceivedBatch(models.Model):
    """A report batch already stored, so a batch resent after a lost response is not."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+")
    batch_id = models.CharField(max_length=64)
    received = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "received batches"
        constraints = [
            models.UniqueConstraint(fields=["task", "batch_id"], name="batch_once_per_task")
        ]

    def __str__(self) -> str:
        return self.batch_id


class PipelineRun(models.Model):
    """A pipeline execution: the controller task, its DAG and parameters."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    controller = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="pipeline_run")
    steps = models.JSONField(default=list)
    parameters = models.JSONField(default=dict, blank=True)
    default_queue = models.CharField(max_length=100, default="default")
    abort_on_failure = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=PipelineStatus.choices, default=PipelineStatus.RUNNING
    )
    created = models.DateTimeField(default=timezone.now)
    completed = models.DateTimeField(null=True, blank=True)
    # Who decides when steps launch: the server engine, or the SDK process running
    # start_locally() (it has the user's Python callbacks) through the same launch verb.
    driver = models.CharField(max_length=16, default=PipelineDriver.SERVER)
    plot_updated = models.DateTimeField(null=True, blank=True)
    # When a refresh of the run's plot is due (None: none asked for). The engine only sets
    # it; a throttled job rebuilds the figure, so the cost of a re-plot, which grows with the
    # run, stays off the path that reacts to each step.
    plot_due = models.DateTimeField(null=True, blank=True)
    # Nodes not in a terminal state, kept by the engine so that "anything left to run?" is
    # not a count over the run's nodes on each event; every full pass recounts it.
    open_nodes = models.IntegerField(default=0)
    # A decorator pipeline's script adds steps as it runs: while the definition is open the
    # run does not end, and `revision` counts the additions so that every process's cached
    # copy of the definition (engine/_shape.py) knows when it is stale.
    definition = models.CharField(max_length=8, default=PipelineDefinition.FIXED)
    revision = models.PositiveIntegerField(default=0)
    # A run started from a step of an ended run: the nodes above that step reuse its
    # results (engine/_rerun.py).
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns"
    )
    rerun_from_step = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"pipeline {self.controller.name} ({self.id[:8]})"


class PipelineNode(models.Model):
    """One step of a pipeline run and the task that executes it."""

    run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="nodes")
    name = models.CharField(max_length=255)
    position = models.PositiveIntegerField(default=0)
    base_task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="pipeline_nodes"
    )
    status = models.CharField(max_length=16, choices=NodeStatus.choices, default=NodeStatus.PENDING)
    resolved_overrides = models.JSONField(default=dict, blank=True)
    # Looked up across all runs when a step is cached (cache_executed_step).
    cache_key = models.CharField(max_length=64, blank=True, default="", db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True, default="")
    updated = models.DateTimeField(default=timezone.now)
    # A fan-out's items run in batches, each a node the engine adds to the running run (not
    # a step of its definition): `map_step` names the map step, `map_index` the batch, and
    # `result` holds the batch's items with each one's status and result.
    map_step = models.CharField(max_length=255, blank=True, default="")
    map_index = models.PositiveIntegerField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    # Why the step ran or was reused ({outcome, code, reason, changes, ...}), decided when it
    # launched, and what its cache key was made of (engine/_why.py), a bounded summary the
    # next run's reason is computed against.
    decision = models.JSONField(default=dict, blank=True)
    key_inputs = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="node_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} of {self.run_id[:8]}"
