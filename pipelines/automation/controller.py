"""`from pipelines.automation.controller import PipelineController`, as in ClearML."""

from ..controller import Node, PipelineController
from ..decorator import PipelineDecorator

__all__ = ["Node", "PipelineController", "PipelineDecorator"]
