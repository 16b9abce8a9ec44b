"""What readers see of rows that may hold secrets. Every door (the REST API's serializers,
the ClearML protocol's documents, the dashboard's pages and plugins, the pipeline figure)
reads task parameters, configuration, status messages and pipeline overrides through here,
so a new view cannot forget to mask them.

Secret-looking values (by name, secrets.py) are shown as a mask to everyone but the readers
`reveals_secrets` names. Writing a mask back unchanged keeps the stored value (services.py),
so a client that read a task masked and saves it whole loses nothing.
"""

from functools import cached_property

from . import secrets
from .choices import ApiKeyKind, TaskStatus
from .models import Task


def reveals_secrets(task: Task, key, run_key_id=None) -> bool:
    """May the caller with API key `key` read `task`'s secret values?

    The task's own key (its step's) may. So may, while the task runs, the key that took it
    to run (`run_key_id`: ClearML agents and runners hand a task the credentials they run it
    with, and the SDK reads its parameters back to apply them). Nobody else, its owner
    included.
    """
    if key is None:
        return False
    if getattr(key, "kind", None) == ApiKeyKind.TASK and key.task_id == task.pk:
        return True
    return task.status == TaskStatus.IN_PROGRESS and run_key_id is not None and run_key_id == key.pk


class TaskReading:
    """A task's fields that may hold secrets, as one reader may see them."""

    def __init__(self, task: Task, *, reveal: bool = False):
        self.task = task
        self.reveal = reveal

    @cached_property
    def hyperparameters(self) -> dict:
        values = self.task.hyperparameters or {}
        return values if self.reveal else secrets.mask_hyperparameters(values)

    @cached_property
    def configuration(self) -> dict:
        values = self.task.configuration or {}
        return values if self.reveal else secrets.mask_configuration(values)

    @cached_property
    def status_message(self) -> str:
        text = self.task.status_message or ""
        if self.reveal or not text:
            return text
        return secrets.mask_text(text, secrets.secret_values(self.task))


def read_task(task: Task, *, key=None, run_key_id=None) -> TaskReading:
    """`task` as the caller with API key `key` sees it (masked for a browser session)."""
    return TaskReading(task, reveal=reveals_secrets(task, key, run_key_id))


def read_overrides(overrides) -> dict:
    """A pipeline step's overrides, as resolved or as defined: anyone who sees the run reads
    them (its figure, its page, the API), so they are always masked."""
    return secrets.mask_flat(overrides) if isinstance(overrides, dict) else overrides


def read_steps(steps) -> list:
    """A pipeline definition as readers see it: copies, the stored one keeps its values."""
    return [_read_step(step) if isinstance(step, dict) else step for step in steps or []]


def _read_step(step: dict) -> dict:
    shown = {
        **step,
        **{
            key: read_overrides(step[key])
            for key in ("parameter_override", "configuration_overrides")
            if isinstance(step.get(key), dict)
        },
    }
    function = step.get("function")
    if isinstance(function, dict) and isinstance(function.get("kwargs"), dict):
        shown["function"] = {**function, "kwargs": read_overrides(function["kwargs"])}
    return shown
