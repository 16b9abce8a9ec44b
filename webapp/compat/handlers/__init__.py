"""Endpoint handlers, one module per ClearML service; importing them registers them."""

from . import (  # noqa: F401
    aggregates,
    auth,
    events,
    model_batches,
    models,
    projects,
    queues,
    sharing,
    task_batches,
    task_definition,
    task_outputs,
    task_params,
    task_removal,
    task_status,
    task_validate,
    tasks,
    users,
    worker_stats,
    workers,
)
