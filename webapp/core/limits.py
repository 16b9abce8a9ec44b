"""The sizes and ranges every input is held to, at both doors (/api/v1/ and /clearml-api/).

Bodies are parsed by `load_json` (size, nesting depth, finite numbers); the verbs then check
each field with the helpers below, so a value that would poison a row (a 150 MB comment, an
infinite time limit, an iteration past the database's integers) is a 400 naming the field
instead of a stored row that breaks every later read.
"""

import json
import math

from .errors import InvalidInput, TooLarge

# Containers inside containers: a body nested deeper is refused before anything walks it
# recursively (serializers, the JSON encoder and the database adapters all recurse).
MAX_JSON_DEPTH = 32
# The range of a signed 64-bit column (BigIntegerField), and of a 32-bit one.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MAX = 2**31 - 1

NAME_MAX = 255  # task, project, artifact and step names; worker and host names
QUEUE_NAME_MAX = 100
TEAM_NAME_MAX = 100
COMMENT_MAX = 10_000
DESCRIPTION_MAX = 10_000
STATUS_MESSAGE_MAX = 20_000
TAG_MAX = 255
TAGS_MAX = 100
PARAMETER_NAME_MAX = 255  # hyperparameter section and name, configuration name
PARAMETER_VALUE_MAX = 65_536
PARAMETER_TYPE_MAX = 64
PARAMETERS_MAX = 10_000  # hyperparameters in all sections, or configuration objects
CONFIGURATION_VALUE_MAX = 4 * 1024 * 1024  # a configuration object (a whole YAML file)
# JSON-typed fields without a schema of their own (script, runtime, metadata, figures),
# measured as serialised JSON.
SCRIPT_MAX_BYTES = 8 * 1024 * 1024
OBJECT_MAX_BYTES = 1024 * 1024
FIGURE_MAX_BYTES = 8 * 1024 * 1024
TIME_LIMIT_MAX = 366 * 86400.0  # a year: beyond it "no limit" (null) is what is meant
# What a worker may report a step used: a year of wall time, on up to 4,096 cores for CPU
# and 64 GPUs, and a TiB of memory. More is a broken measurement, not a big step.
RESOURCE_WALL_SECONDS_MAX = TIME_LIMIT_MAX
RESOURCE_CPU_SECONDS_MAX = TIME_LIMIT_MAX * 4096
RESOURCE_GPU_SECONDS_MAX = TIME_LIMIT_MAX * 64
RESOURCE_RSS_BYTES_MAX = 2**40


class BodyError(InvalidInput):
    """A request body that cannot be read as JSON within the limits."""


def load_json(raw: bytes | str, max_bytes: int):
    """The JSON value of a request body, or BodyError / TooLarge.

    NaN and Infinity literals (which Python's json accepts) and numbers too large for a
    float are refused: stored, they make every later read of the row fail.
    """
    if len(raw) > max_bytes:
        raise TooLarge(f"request body exceeds {max_bytes} bytes")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError as error:
        raise BodyError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from error
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise BodyError(f"invalid JSON: {error}") from error
    check_tree(value)
    return value


def _refuse_constant(name: str):
    raise BodyError(f"invalid JSON: {name} is not a number JSON allows")


def check_tree(value, field: str = "", strings: bool = False) -> None:
    """Depth at most MAX_JSON_DEPTH, floats finite, ints within 64 bits, and with `strings`
    no NUL character in a string or key (PostgreSQL stores none); iterative, so a deep
    value cannot exhaust the stack here."""
    where = f"{field}: " if field else ""
    if type(value) is not dict and type(value) is not list:
        value = [value]
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if type(node) is dict:
            if strings and any("\x00" in key for key in node):
                raise BodyError(f"{where}text must not contain NUL characters")
            items = node.values()
        else:
            items = node
        for item in items:
            kind = type(item)
            if kind is str:
                if strings and "\x00" in item:
                    raise BodyError(f"{where}text must not contain NUL characters")
            elif kind is dict or kind is list:
                if depth >= MAX_JSON_DEPTH:
                    raise BodyError(f"{where}JSON nested deeper than {MAX_JSON_DEPTH} levels")
                stack.append((item, depth + 1))
            elif kind is float:
                if not math.isfinite(item):
                    raise BodyError(f"{where}numbers must be finite")
            elif kind is int and not INT64_MIN <= item <= INT64_MAX:
                raise BodyError(f"{where}integer {item} is out of range")


# ---------------------------------------------------------------- field checks for verbs


def text(field: str, value, max_length: int, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if len(value) > max_length:
        raise InvalidInput(
            f"{field} is longer than {max_length} characters ({len(value)})", field=field
        )
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters", field=field)
    if not allow_empty and not value.strip():
        raise InvalidInput(f"{field} must not be empty", field=field)
    return value


def tags(field: str, value) -> list:
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise InvalidInput(f"{field} must be a list of strings", field=field)
    if len(value) > TAGS_MAX:
        raise InvalidInput(f"{field}: at most {TAGS_MAX} tags ({len(value)})", field=field)
    for tag in value:
        text(field, tag, TAG_MAX)
    return value


def integer(field: str, value, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be an integer", field=field)
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be from {low} to {high}", field=field)
    return value


def to_integer(field: str, value, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """An integer from a JSON number or a decimal string (query parameters, ClearML)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip()) if len(value) <= 20 else None
        except ValueError:
            value = None
    return integer(field, value, low, high)


def number(field: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{field} must be a number", field=field)
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInput(f"{field} must be from {low} to {high}", field=field)
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidInput(f"{field} must be a finite number from {low} to {high}", field=field)
    return value


def time_limit(field: str, value) -> float | None:
    """Seconds a step may run, or None for no limit."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value) if len(value) <= 64 else None
        except ValueError:
            value = None
    return number(field, value, 0.001, TIME_LIMIT_MAX)


def step_resources(value) -> dict:
    """A worker's report of what a step used, as the Task fields it sets (each None when
    not measured): cpu_seconds, peak_rss_bytes, wall_seconds, gpu_seconds."""
    value = value or {}
    if not isinstance(value, dict):
        raise InvalidInput("resources must be an object", field="resources")
    bounds = {
        "cpu_seconds": RESOURCE_CPU_SECONDS_MAX,
        "peak_rss_bytes": RESOURCE_RSS_BYTES_MAX,
        "wall_seconds": RESOURCE_WALL_SECONDS_MAX,
        "gpu_seconds": RESOURCE_GPU_SECONDS_MAX,
    }
    unknown = set(value) - set(bounds)
    if unknown:
        raise InvalidInput(f"resources: unknown {', '.join(sorted(unknown))}", field="resources")
    fields = {}
    for name, high in bounds.items():
        raw = value.get(name)
        measured = None if raw is None else number(f"resources.{name}", raw, 0.0, high)
        if name == "peak_rss_bytes" and measured is not None:
            measured = int(measured)
        fields[f"resource_{name}"] = measured
    return fields


def checked_task_field(field: str, value):
    """A task field's value within its limits (core/py), or InvalidInput naming it.
    Hyperparameters and configuration are checked by their normalisation (parameters.py)."""
    if field == "name":
        return text("name", value, NAME_MAX, allow_empty=False).strip()
    if field == "comment":
        return text("comment", value, COMMENT_MAX)
    if field in ("tags", "system_tags"):
        return tags(field, value)
    if field == "script":
        return json_object(field, value, SCRIPT_MAX_BYTES)
    if field == "runtime":
        return json_object(field, value)
    if field == "type":
        from .choices import TaskType

        if value not in TaskType.values:
            raise InvalidInput(f"unknown task type {value!r}", field=field, allowed=TaskType.values)
        return value
    if field == "max_attempts":
        return integer(field, value, 1, 100)
    if field == "time_limit":
        return time_limit(field, value)
    return value


def json_object(field: str, value, max_bytes: int = OBJECT_MAX_BYTES) -> dict:
    """A free-form object stored as JSON: checked for depth and numbers, bounded in size."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be an object", field=field)
    json_value(field, value, max_bytes)
    return value


def json_value(field: str, value, max_bytes: int = OBJECT_MAX_BYTES):
    try:
        check_tree(value, field, strings=True)
    except BodyError as error:
        raise InvalidInput(error.message, field=field) from None
    try:
        size = len(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"{field} is not JSON: {error}", field=field) from error
    if size > max_bytes:
        raise InvalidInput(f"{field} is larger than {max_bytes} bytes as JSON", field=field)
    return value
