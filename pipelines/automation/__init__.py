"""ClearML-compatible import path: `from pipelines.automation import PipelineController`."""

from ..controller import PipelineController

__all__ = ["PipelineController"]
