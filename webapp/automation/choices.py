"""Every value a schedule, a trigger or a firing takes."""

from django.db import models

from webapp.core.choices import TaskStatus


class TargetKind(models.TextChoices):
    TASK = "task", "Task (cloned from a base task)"
    PIPELINE = "pipeline", "Pipeline (from its latest run)"


class Overlap(models.TextChoices):
    """What a tick does while the run an earlier tick started is still going."""

    SKIP = "skip", "Skip the tick"
    QUEUE = "queue", "Wait for the previous run, then start"
    ALLOW = "allow", "Start alongside"


class Missed(models.TextChoices):
    """What ticks that passed while no server worker ran do once one runs again."""

    RUN_ONCE = "run_once", "Run once for all of them"
    RUN_ALL = "run_all", "Run each of them"
    SKIP = "skip", "Skip them"


class FiringState(models.TextChoices):
    PENDING = "pending", "Recorded, starting"
    WAITING = "waiting", "Waiting for the previous run"
    LAUNCHED = "launched", "Started"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed to start"


OPEN_FIRING_STATES = frozenset({FiringState.PENDING, FiringState.WAITING})


class TriggerEvent(models.TextChoices):
    STATUS = "status", "Ends with a status"
    TAGS = "tags", "Gets tags"
    METRIC = "metric", "Reports a metric past a threshold"
    ARTIFACT = "artifact", "Has an artifact ready"


class TriggerSource(models.TextChoices):
    TASK = "task", "A task"
    PIPELINE = "pipeline", "A pipeline"


class MetricSign(models.TextChoices):
    # ClearML's trigger_on_sign: "max" fires at or above the threshold, "min" at or below.
    MAX = "max", "At or above the threshold"
    MIN = "min", "At or below the threshold"


# The statuses a status trigger may wait for: a task that ended.
TRIGGER_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.STOPPED)
