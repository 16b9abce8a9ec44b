"""Schedules, triggers and their firings.

A firing is the record of one tick of a schedule or one event of a trigger, unique by
(schedule, tick) and (trigger, event key): the row is inserted before anything is started,
so two server workers, a retried job or the sweep racing the fast path start it once.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.timezone import now

from webapp.core.models import PipelineRun, Project, Task, new_id

from .choices import (
    FiringState,
    MetricSign,
    Missed,
    Overlap,
    TargetKind,
    TriggerEvent,
    TriggerSource,
)


class Target(models.Model):
    """What a schedule or a trigger starts: a clone of a base task enqueued on a queue, or
    a new run of a pipeline (named by its controller's project, name and version) from its
    latest run's definition, with parameter values overriding that run's."""

    target_kind = models.CharField(max_length=16, choices=TargetKind.choices)
    base_task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queue = models.CharField(max_length=100, default="default")
    # {"Section/name": "value"}; a trigger's values may hold ${trigger...} references.
    task_parameters = models.JSONField(default=dict, blank=True)
    time_limit = models.FloatField(null=True, blank=True, help_text="seconds")
    # Where the clones go (default: the base task's project).
    target_project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pipeline_project = models.CharField(max_length=255, blank=True, default="")
    pipeline_name = models.CharField(max_length=255, blank=True, default="")
    # Blank: the latest run of any version.
    pipeline_version = models.CharField(max_length=100, blank=True, default="")
    pipeline_parameters = models.JSONField(default=dict, blank=True)
    # Added to the task (or the pipeline's controller) each firing starts.
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        abstract = True

    @property
    def target_label(self) -> str:
        if self.target_kind == TargetKind.PIPELINE:
            version = f" v{self.pipeline_version}" if self.pipeline_version else ""
            return f"pipeline {self.pipeline_project}/{self.pipeline_name}{version}"
        return f"task {self.base_task.name if self.base_task else '(base task deleted)'}"


class Schedule(Target):
    """Start the target on a cron expression or every N seconds, in a time zone."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    name = models.CharField(max_length=255)
    # Who may see and change it: the project of what it starts (access.py's rules).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="schedules")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    cron = models.CharField(max_length=100, blank=True, default="")
    interval_seconds = models.FloatField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    overlap = models.CharField(max_length=16, choices=Overlap.choices, default=Overlap.ALLOW)
    missed = models.CharField(max_length=16, choices=Missed.choices, default=Missed.RUN_ONCE)
    paused = models.BooleanField(default=False)
    # Interval ticks fall on anchor + k * interval.
    anchor = models.DateTimeField(default=now)
    # Every tick up to here has been dealt with (fired, skipped or waiting).
    covered_until = models.DateTimeField(default=now)
    # The first tick after covered_until; the sweep looks for next_tick <= now.
    next_tick = models.DateTimeField(null=True, blank=True, db_index=True)
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(default=now)

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="schedule_name_per_project")
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("automation:schedule", kwargs={"schedule_id": self.id})

    @property
    def when_label(self) -> str:
        if self.cron:
            return f"cron {self.cron} ({self.timezone})"
        return f"every {self.interval_seconds:g} s"


class ScheduleFiring(models.Model):
    """One tick of a schedule: started, waiting, skipped or failed, and why."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="firings")
    tick = models.DateTimeField()
    state = models.CharField(max_length=16, choices=FiringState.choices, db_index=True)
    reason = models.TextField(blank=True, default="")
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=now, db_index=True)
    launched = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-tick"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "tick"], name="one_firing_per_tick")
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id[:8]}@{self.tick:%Y-%m-%d %H:%M:%S}"


class Trigger(Target):
    """Start the target when a task or pipeline ends with a status, gets tags, reports a
    metric past a threshold, or has an artifact of a given name ready."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    name = models.CharField(max_length=255)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="triggers")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    source = models.CharField(
        max_length=16, choices=TriggerSource.choices, default=TriggerSource.TASK
    )
    event = models.CharField(max_length=16, choices=TriggerEvent.choices)
    # Empty: any project the trigger's owner can see.
    watch_project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # A regular expression the task's (or pipeline's) name must match; empty: any.
    name_pattern = models.CharField(max_length=255, blank=True, default="")
    required_tags = models.JSONField(default=list, blank=True)
    statuses = models.JSONField(default=list, blank=True)
    on_tags = models.JSONField(default=list, blank=True)
    metric_title = models.CharField(max_length=255, blank=True, default="")
    metric_series = models.CharField(max_length=255, blank=True, default="")
    threshold = models.FloatField(null=True, blank=True)
    sign = models.CharField(max_length=8, choices=MetricSign.choices, default=MetricSign.MAX)
    artifact_name = models.CharField(max_length=255, blank=True, default="")
    # Only tasks that ran from a queue (ClearML's trigger_exclude_dev_tasks).
    exclude_dev = models.BooleanField(default=False)
    # ClearML's single_instance: skip an event while what the last one started still runs.
    single_instance = models.BooleanField(default=False)
    paused = models.BooleanField(default=False)
    created = models.DateTimeField(default=now)
    updated = models.DateTimeField(default=now)

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="trigger_name_per_project")
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("automation:trigger", kwargs={"trigger_id": self.id})

    @property
    def event_label(self) -> str:
        what = "a pipeline" if self.source == TriggerSource.PIPELINE else "a task"
        where = f" in {self.watch_project.name}" if self.watch_project_id else ""
        if self.event == TriggerEvent.STATUS:
            return f"{what}{where} ends {' or '.join(self.statuses)}"
        if self.event == TriggerEvent.TAGS:
            return f"{what}{where} gets tags {', '.join(self.on_tags)}"
        if self.event == TriggerEvent.METRIC:
            sign = ">=" if self.sign == MetricSign.MAX else "<="
            series = f"{self.metric_title}/{self.metric_series}"
            return f"{what}{where} reports {series} {sign} {self.threshold:g}"
        return f"{what}{where} has artifact {self.artifact_name!r} ready"


class TriggerFiring(models.Model):
    """One event of a trigger, recorded in the transaction of the event itself."""

    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="firings")
    event_key = models.CharField(max_length=255)
    # The task (or pipeline controller) the event happened to.
    source_task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the event was (status, tags, metric value, artifact) when it happened.
    detail = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=FiringState.choices, db_index=True)
    reason = models.TextField(blank=True, default="")
    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=now, db_index=True)
    launched = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["trigger", "event_key"], name="one_firing_per_event")
        ]

    def __str__(self) -> str:
        return f"{self.trigger_id[:8]} {self.event_key}"
