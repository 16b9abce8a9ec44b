"""Step caching: a step's cache key, and the completed task an equal key reuses."""

import copy
import hashlib
import json

from .. import services
from ..choices import TaskStatus
from ..models import PipelineNode, Task


def cache_key(base: Task, overrides: dict, config: dict) -> str:
    params = copy.deepcopy(base.hyperparameters)
    for section, values in overrides.items():
        params.setdefault(section, {}).update(values)
    script = {k: base.script.get(k) for k in ("code", "entry_point", "commit", "diff")}
    merged_config = {**base.configuration, **services.normalize_configuration(config)}
    payload = json.dumps(
        {"script": script, "params": params, "config": merged_config}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def cached_task(cache_key: str) -> Task | None:
    node = (
        PipelineNode.objects.filter(
            cache_key=cache_key,
            task__status__in=(TaskStatus.COMPLETED, TaskStatus.PUBLISHED),
        )
        .select_related("task")
        .order_by("-updated")
        .first()
    )
    return node.task if node else None
