"""pipelines: a ClearML-style SDK for a self-hosted pipeline server."""

from .logger import Logger
from .storage import StorageManager
from .task import Task

__all__ = ["Logger", "StorageManager", "Task", "PipelineController"]


def __getattr__(name):
    # The controller pulls in the DAG code; load it only when asked for.
    if name == "PipelineController":
        from .controller import PipelineController

        return PipelineController
    raise AttributeError(name)
