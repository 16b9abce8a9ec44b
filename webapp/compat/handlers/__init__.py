"""Endpoint handlers, one module per ClearML service; importing them registers them."""

from . import (  # noqa: F401
    aggregates,
    auth,
    events,
    models,
    pipeline_runs,
    project_lists,
    projects,
    queues,
    reports,
    task_batches,
    task_moves,
    task_outputs,
    task_status,
    tasks,
    workers,
)
