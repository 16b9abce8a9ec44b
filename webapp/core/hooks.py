"""Listener points for what other apps follow: a task's status changed (status.py, the one
writer), tags added to a task, scalars reported, an artifact's bytes verified.

Core calls `notify()` inside the transaction of the change, so a listener that records
something commits with it or not at all; what it does after the change must go on
`transaction.on_commit`. Apps register in their AppConfig.ready(), so core imports none of
them. A listener that raises is logged and the change stands, except for a database error,
which the caller's transaction must see.
"""

import logging
from collections.abc import Callable

from django.db import DatabaseError

logger = logging.getLogger(__name__)

# listener(task) after a task's status changed (the pipeline engine, the ClearML mirror,
# automation's triggers).
STATUS_CHANGED = "status_changed"
# listener(task, added_tags: list[str]) after an edit added tags to an existing task.
TAGS_ADDED = "tags_added"
# listener(task, scalars: {(title, series, iteration): value}) after a batch is stored.
SCALARS_REPORTED = "scalars_reported"
# listener(artifact) once an artifact's bytes are verified and it is `ready`.
ARTIFACT_READY = "artifact_ready"

EVENTS = (STATUS_CHANGED, TAGS_ADDED, SCALARS_REPORTED, ARTIFACT_READY)

_listeners: dict[str, list[Callable]] = {event: [] for event in EVENTS}


def add_listener(event: str, listener: Callable) -> None:
    """Call `listener(...)` at every `event` (registering twice is one registration)."""
    if listener not in _listeners[event]:
        _listeners[event].append(listener)


def remove_listener(event: str, listener: Callable) -> None:
    if listener in _listeners[event]:
        _listeners[event].remove(listener)


def notify(event: str, *args) -> None:
    for listener in _listeners[event]:
        try:
            listener(*args)
        except DatabaseError:
            raise
        except Exception:  # noqa: BLE001 - a listener must never undo the change
            logger.exception("%s listener %r failed", event, listener)
