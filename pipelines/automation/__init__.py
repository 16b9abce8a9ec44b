"""ClearML-compatible import path: `from pipelines.automation import PipelineController`."""

from ..controller import PipelineController
from ..decorator import PipelineDecorator

__all__ = ["PipelineController", "PipelineDecorator"]
