"""Endpoint handlers, one module per ClearML service; importing them registers them."""

from . import (  # noqa: F401
    aggregates,
    auth,
    event_reads,
    event_samples,
    events,
    models,
    projects,
    queues,
    task_batches,
    task_outputs,
    task_status,
    tasks,
    workers,
)
