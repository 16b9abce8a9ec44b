"""Endpoint handlers, one module per ClearML service; importing them registers them."""

from . import (  # noqa: F401
    aggregates,
    auth,
    events,
    models,
    projects,
    queues,
    task_batches,
    task_outputs,
    task_params,
    task_status,
    tasks,
    users,
    worker_stats,
    workers,
)
