"""`from pipelines.automation.controller import PipelineController`, as in ClearML."""

from ..controller import Node, PipelineController

__all__ = ["Node", "PipelineController"]
