"""Secret-looking parameter values in ClearML documents: masked as our REST API masks them.

Our API shows a task's secret-looking parameters (webapp/core/secrets.py) only to the task's
own key. A ClearML task running remotely has no key of its own: clearml-agent, our ClearML
runner and the SDK's LocalClearmlJob hand the task the credentials they run it with, and the
SDK reads its parameters back through `tasks.get_by_id` to apply them. So here the values are
real for
- the task's own key (a `pipelines worker` running a ClearML task passes it that key), and
- while the task is in progress, the key that pulled it from its queue or marked it started
  (TaskExtra.run_key): the agent's, the runner's, or the dev machine's that runs it;
and masked for every other caller. A masked value written back unchanged keeps the stored
one (services.edit_task), so an SDK that reads a task it does not run (a
controller cloning a step) and saves it whole loses nothing.
"""

from webapp.core import secrets
from webapp.core.choices import ApiKeyKind, TaskStatus


def reveals_secrets(task, key, run_key_id=None) -> bool:
    """May `key` read `task`'s secret-looking parameter values? `run_key_id` is the task's
    TaskExtra.run_key_id (None when it has no extra row)."""
    if key is None:
        return False
    if getattr(key, "kind", None) == ApiKeyKind.TASK and key.task_id == task.pk:
        return True
    return task.status == TaskStatus.IN_PROGRESS and run_key_id is not None and run_key_id == key.pk


def mask_document(doc: dict, task) -> dict:
    """A task document (ClearML shape) with secret-looking values masked, in place."""
    if doc.get("hyperparams"):
        doc["hyperparams"] = secrets.mask_hyperparameters(doc["hyperparams"])
    if doc.get("configuration"):
        doc["configuration"] = mask_configuration(doc["configuration"])
    if doc.get("status_message"):
        doc["status_message"] = secrets.mask_text(
            doc["status_message"], secrets.secret_values(task)
        )
    return doc


def mask_hyperparam_items(items: list) -> list:
    """[{section, name, value, ...}] (tasks.get_hyper_params) with secret-looking values masked."""
    return [
        {**item, "value": secrets.MASK}
        if secrets.is_sensitive(item.get("name")) and item.get("value") not in ("", None)
        else item
        for item in items
    ]


def mask_configuration(configuration: dict) -> dict:
    """{name: {name, value, type, description}} with secret-looking configuration masked."""
    return secrets.mask_flat(configuration)
