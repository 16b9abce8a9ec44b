"""Pure rules of a fan-out (a map step): its settings, how its items are batched, and when
enough of them succeeded. The SDK checks a definition with them before sending it, and the
server's engine applies them while the run goes, so both agree; like `dag.py`, no I/O and
no framework here.

A map step is a step with a ``map`` mapping::

    {"kwarg": "x",            # the function's parameter each item is passed as
     "items": [...] | "${step.artifacts.numbers.url}" | "${pipeline.items}",
     "max_parallel": 5,       # at most this many of its tasks queued or running (None: all)
     "min_success_ratio": 0.8,  # the step succeeds when this share of its items did
     "items_per_task": 1}     # items one task runs, one after another

The items are known only when the step is ready: a literal list, or one reference to a
pipeline parameter, a parent's parameter or a parent's JSON artifact holding a list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .dag import PipelineDefinitionError, parse_references

MAP_ITEMS_MAX = 10_000
MAX_PARALLEL_MAX = 1_000
ITEMS_PER_TASK_MAX = 10_000
# A batch's items travel in one configuration object of its task.
BATCH_ITEMS_MAX_CHARS = 4 * 1024 * 1024
# An item's return values inline, as JSON; a larger result is uploaded as an artifact.
ITEM_VALUES_MAX_CHARS = 64 * 1024
# A failed map names at most this many of its failed items in its message.
NAMED_FAILURES_MAX = 50
MAP_KEYS = frozenset({"kwarg", "items", "max_parallel", "min_success_ratio", "items_per_task"})


def map_settings(step: Mapping[str, Any]) -> dict | None:
    """The checked ``map`` of a step (defaults filled in), or None for an ordinary step."""
    raw = step.get("map")
    if raw is None:
        return None
    name = step.get("name")
    if not isinstance(raw, Mapping):
        raise PipelineDefinitionError("map must be a mapping", name, "map")
    unknown = set(raw) - MAP_KEYS
    if unknown:
        raise PipelineDefinitionError(
            f"map has unknown field(s) {', '.join(sorted(map(str, unknown)))}", name, "map"
        )
    kwarg = raw.get("kwarg")
    if not isinstance(kwarg, str) or not kwarg or len(kwarg) > 255:
        raise PipelineDefinitionError("map.kwarg must name the function's parameter", name, "map")
    items = raw.get("items")
    if isinstance(items, str):
        refs = parse_references(items)
        if len(refs) != 1 or refs[0].text != items:
            raise PipelineDefinitionError(
                "map.items must be a list or exactly one ${...} reference", name, "map.items"
            )
        if refs[0].kind == "artifact" and refs[0].field != "url":
            raise PipelineDefinitionError(
                "map.items may name an artifact as ${step.artifacts.NAME.url}", name, "map.items"
            )
    elif isinstance(items, list):
        check_items(items, name)
    else:
        raise PipelineDefinitionError(
            "map.items must be a list or a ${...} reference", name, "map.items"
        )
    return {
        "kwarg": kwarg,
        "items": items,
        "max_parallel": _bounded_int(raw, "max_parallel", None, MAX_PARALLEL_MAX, name),
        "min_success_ratio": _ratio(raw.get("min_success_ratio", 1.0), name),
        "items_per_task": _bounded_int(raw, "items_per_task", 1, ITEMS_PER_TASK_MAX, name),
    }


def check_items(items: Any, step: str | None = None) -> list:
    """The items of a map, as resolved: a list of at most MAP_ITEMS_MAX values."""
    if not isinstance(items, list):
        raise PipelineDefinitionError(
            f"map items must be a list, not {type(items).__name__}", step, "map.items"
        )
    if len(items) > MAP_ITEMS_MAX:
        raise PipelineDefinitionError(
            f"map has {len(items)} items; at most {MAP_ITEMS_MAX} are allowed", step, "map.items"
        )
    return items


def _bounded_int(raw: Mapping, key: str, default: int | None, high: int, step):
    """An integer from 1 to `high`; a missing (or null) one takes `default`."""
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise PipelineDefinitionError(f"must be an integer from 1 to {high}", step, f"map.{key}")
    return value


def _ratio(value, step) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PipelineDefinitionError("must be a number from 0 to 1", step, "map.min_success_ratio")
    if not 0 <= value <= 1:
        raise PipelineDefinitionError("must be a number from 0 to 1", step, "map.min_success_ratio")
    return float(value)


def batches(count: int, per_task: int) -> list[range]:
    """The item indices each task of a map runs, in order."""
    return [range(start, min(start + per_task, count)) for start in range(0, count, per_task)]


def launchable(pending: int, active: int, max_parallel: int | None) -> int:
    """How many more batches may be launched now."""
    if max_parallel is None:
        return pending
    return max(0, min(pending, max_parallel - active))


def succeeded_enough(total: int, completed: int, min_success_ratio: float) -> bool:
    """A map of no items succeeds; otherwise its completed share must reach the ratio."""
    if total == 0:
        return True
    # Compared as integers, so 0.8 of 50 is exactly 40 and not 39.99...
    return completed >= math.ceil(round(min_success_ratio * total, 9))


def failure_message(total: int, failed: Sequence[int], min_success_ratio: float) -> str:
    """Why a map failed, naming its failed items (the first NAMED_FAILURES_MAX of them)."""
    needed = math.ceil(round(min_success_ratio * total, 9))
    shown = ", ".join(str(index) for index in failed[:NAMED_FAILURES_MAX])
    more = (
        f" and {len(failed) - NAMED_FAILURES_MAX} more" if len(failed) > NAMED_FAILURES_MAX else ""
    )
    return (
        f"{len(failed)} of {total} items failed, more than min_success_ratio "
        f"{min_success_ratio:g} allows ({needed} must succeed): items {shown}{more}"
    )
