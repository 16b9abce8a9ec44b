"""Every status value and the one table of allowed task transitions."""

from django.db import models


class TaskStatus(models.TextChoices):
    CREATED = "created", "Draft"
    QUEUED = "queued", "Queued"
    IN_PROGRESS = "in_progress", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped"
    PUBLISHED = "published", "Published"


ACTIVE_STATES = frozenset({TaskStatus.QUEUED, TaskStatus.IN_PROGRESS})
# A task moving to one of these has ended: its `completed` time is stamped (publishing a
# completed task keeps the time it ended).
ENDED_STATES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.STOPPED})
TERMINAL_STATES = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.STOPPED, TaskStatus.PUBLISHED}
)

# from-status -> statuses it may move to. Anything not listed is refused with 409.
TASK_TRANSITIONS: dict[str, frozenset[str]] = {
    TaskStatus.CREATED: frozenset(
        {
            TaskStatus.QUEUED,
            TaskStatus.IN_PROGRESS,  # a script run on a dev machine
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.STOPPED,
        }
    ),
    TaskStatus.QUEUED: frozenset(
        {TaskStatus.IN_PROGRESS, TaskStatus.CREATED, TaskStatus.STOPPED, TaskStatus.FAILED}
    ),
    TaskStatus.IN_PROGRESS: frozenset(
        {
            TaskStatus.COMPLETED,
            TaskStatus.FAILED,
            TaskStatus.STOPPED,
            TaskStatus.CREATED,  # execute_remotely() turns a local run into a draft
            TaskStatus.QUEUED,  # the reaper re-queues a lost attempt
        }
    ),
    TaskStatus.COMPLETED: frozenset({TaskStatus.PUBLISHED, TaskStatus.CREATED}),
    TaskStatus.FAILED: frozenset({TaskStatus.CREATED}),
    TaskStatus.STOPPED: frozenset({TaskStatus.CREATED}),
    TaskStatus.PUBLISHED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    return target in TASK_TRANSITIONS.get(current, frozenset())


class TaskType(models.TextChoices):
    TRAINING = "training", "Training"
    TESTING = "testing", "Testing"
    INFERENCE = "inference", "Inference"
    DATA_PROCESSING = "data_processing", "Data processing"
    APPLICATION = "application", "Application"
    MONITOR = "monitor", "Monitor"
    CONTROLLER = "controller", "Controller"
    OPTIMIZER = "optimizer", "Optimizer"
    SERVICE = "service", "Service"
    QC = "qc", "QC"
    CUSTOM = "custom", "Custom"
    # A ClearML report: markdown written in its web UI, kept as a task of its own.
    REPORT = "report", "Report"


class ArtifactKind(models.TextChoices):
    FILE = "file", "File"
    FOLDER = "folder", "Folder"
    NUMPY = "numpy", "NumPy array"
    PANDAS = "pandas", "pandas DataFrame"
    JSON = "json", "JSON"
    TEXT = "text", "Text"
    IMAGE = "image", "Image"
    PICKLE = "pickle", "Pickle"


class ArtifactState(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"


class ApiKeyKind(models.TextChoices):
    USER = "user", "User"
    WORKER = "worker", "Worker"
    TASK = "task", "Task"


class LogStream(models.TextChoices):
    STDOUT = "stdout", "stdout"
    STDERR = "stderr", "stderr"
    SYSTEM = "system", "system"


class PipelineStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped"


class PipelineDriver(models.TextChoices):
    """Who launches a run's steps (PipelineRun.driver)."""

    SERVER = "server", "Server engine"
    # The SDK process running start_locally() (it has the user's Python callbacks).
    CLIENT = "client", "SDK process"
    # A ClearML PipelineController launches the steps itself; the run only mirrors its DAG
    # (webapp/compat/mirror.py) and the engine never acts on it.
    CLEARML = "clearml", "Mirrored from a ClearML controller"


class PipelineDefinition(models.TextChoices):
    """Whether a run's steps may still grow (PipelineRun.definition)."""

    # Given whole when the run started (a PipelineController's steps).
    FIXED = "fixed", "Given at start"
    # Added by the controller's script as it runs (PipelineDecorator): the run does not end
    # while its script may still add steps.
    OPEN = "open", "Still growing"
    # The script added its last step.
    CLOSED = "closed", "Complete"


PIPELINE_TERMINAL = frozenset(
    {PipelineStatus.COMPLETED, PipelineStatus.FAILED, PipelineStatus.STOPPED}
)


class NodeStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    CACHED = "cached", "Cached"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    ABORTED = "aborted", "Aborted"


NODE_TERMINAL = frozenset(
    {
        NodeStatus.COMPLETED,
        NodeStatus.CACHED,
        NodeStatus.FAILED,
        NodeStatus.SKIPPED,
        NodeStatus.ABORTED,
    }
)

# How a step's task status shows on its pipeline node.
NODE_STATUS_FOR_TASK = {
    TaskStatus.CREATED: NodeStatus.PENDING,
    TaskStatus.QUEUED: NodeStatus.QUEUED,
    TaskStatus.IN_PROGRESS: NodeStatus.RUNNING,
    TaskStatus.COMPLETED: NodeStatus.COMPLETED,
    TaskStatus.PUBLISHED: NodeStatus.COMPLETED,
    TaskStatus.FAILED: NodeStatus.FAILED,
    TaskStatus.STOPPED: NodeStatus.ABORTED,
}
