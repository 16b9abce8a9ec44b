"""Step caching: a step's cache key, and the completed task an equal key reuses."""

import hashlib
import json

from ..choices import TaskStatus
from ..models import PipelineNode, Task
from ._why import key_parts


def cache_key(base: Task, overrides: dict, config: dict, parts: dict | None = None) -> str:
    parts = parts if parts is not None else key_parts(base, overrides, config)
    payload = json.dumps(parts, sort_keys=True)
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
