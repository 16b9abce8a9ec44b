"""Helpers for plugins that draw Plotly figures."""

import math


def json_safe(value):
    """The value with NaN and infinities replaced by None.

    Browsers parse the embedded figure with JSON.parse, which rejects the NaN tokens
    Python's json module writes; Plotly draws None as a gap, which is what a missing
    value should look like.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value
