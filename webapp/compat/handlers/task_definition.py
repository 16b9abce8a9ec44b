"""The parts of a task's definition ClearML gives inside `execution`: its artifacts (on
create, edit and clone) and, on clone, its input models.

Artifacts given this way become Artifact rows as tasks.add_or_update_artifacts makes them;
an edit's list replaces the task's. A clone takes the source's input artifacts (never its
outputs) and its input models; a model given for it, or `validate_references`, is checked.
"""

from django.utils import timezone

from webapp.core import artifacts as core_artifacts
from webapp.core.models import Task

from ..documents import artifact_doc, extra_of
from ..query import as_list
from ..task_models import LEGACY_NAMES, check_models_exist, model_ids
from .task_outputs import upsert_artifact


def _mode(item: dict) -> str:
    return str(item.get("mode") or "output")


def execution_artifacts(call, task: Task, execution, *, replace: bool) -> None:
    """The artifacts listed in a create's or edit's `execution` (none listed: unchanged)."""
    if not isinstance(execution, dict) or execution.get("artifacts") is None:
        return
    items = [dict(a) for a in as_list(execution["artifacts"]) if isinstance(a, dict)]
    if replace:
        listed = {str(a.get("key") or "").strip() for a in items}
        stale = [a.name for a in task.artifacts.all() if a.name not in listed]
        core_artifacts.forget_artifacts(task, stale)
    for item in items:
        item["mode"] = _mode(item)
        upsert_artifact(call, task, item)


def clone_definition(call, source: Task, task: Task) -> None:
    """The clone's input models and input artifacts, from the source or the overrides."""
    body = call.body
    overrides = body.get("execution_overrides")
    overrides = overrides if isinstance(overrides, dict) else {}
    now = timezone.now().isoformat()
    extra = extra_of(task)
    inputs = None
    if body.get("new_task_input_models"):
        inputs = [
            {"name": str(m.get("name") or ""), "model": str(m["model"]), "updated": now}
            for m in as_list(body["new_task_input_models"])
            if isinstance(m, dict) and m.get("model")
        ]
    elif overrides.get("model"):
        inputs = [{"name": LEGACY_NAMES["input"], "model": str(overrides["model"]), "updated": now}]
    if inputs is not None:
        extra.task_models = {**(extra.task_models or {}), "input": inputs}
    execution = dict(extra.execution or {})
    execution.pop("model", None)
    extra.execution = execution
    extra.save()
    if inputs is not None or call.flag("validate_references"):
        check_models_exist(call, model_ids(extra.task_models, "input"))
    if isinstance(overrides.get("artifacts"), list):
        items = [dict(a) for a in overrides["artifacts"] if isinstance(a, dict)]
    else:
        items = [artifact_doc(a) for a in source.artifacts.all()]
    for item in items:
        if _mode(item) != "output":
            upsert_artifact(call, task, {**item, "mode": _mode(item)})
