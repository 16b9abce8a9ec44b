"""ClearML-compatible import path: `from pipelines.automation import PipelineController`,
`TaskScheduler` and `TriggerScheduler` (whose schedules and triggers run on the server)."""

from ..controller import PipelineController
from ..decorator import PipelineDecorator
from .scheduler import TaskScheduler
from .trigger import TriggerScheduler

__all__ = ["PipelineController", "PipelineDecorator", "TaskScheduler", "TriggerScheduler"]
