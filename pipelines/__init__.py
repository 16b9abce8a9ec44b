"""pipelines: a ClearML-style SDK for a self-hosted pipeline server.

The SDK's names load on first use, so that `from pipelines import dag` (which the server
imports) pulls in neither the HTTP client nor the SDK's exit hooks.

Who runs what: the SDK that user scripts import lives here at the top; `pipelines.worker` is
the step worker, `pipelines.launcher` the `pipelines` command and what `up` starts, and
`pipelines.clearml` runs tasks made by the official `clearml` SDK.
"""

import importlib

__all__ = [
    "Logger",
    "PipelineController",
    "PipelineDecorator",
    "StorageManager",
    "Task",
    "TaskTypes",
]

_HOMES = {
    "Logger": ".logger",
    "PipelineController": ".controller",
    "PipelineDecorator": ".decorator",
    "StorageManager": ".storage",
    "Task": ".task",
    "TaskTypes": ".task",
}


def __getattr__(name):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})
