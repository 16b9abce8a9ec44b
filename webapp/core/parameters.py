"""Task parameters as stored: every value a string, with its type and a description, so a
value reads back exactly as it was given whatever its Python type."""

import math

from . import limits
from .errors import InvalidInput


def normalize_hyperparameters(raw: dict) -> dict:
    """{section: {name: value | {value, type, description}}} with values kept as strings."""
    if not isinstance(raw, dict):
        raise InvalidInput("hyperparameters must be an object of sections", field="hyperparameters")
    result: dict = {}
    count = 0
    for section, params in raw.items():
        if not isinstance(params, dict):
            raise InvalidInput(
                f"hyperparameter section {section!r} must be an object", field="hyperparameters"
            )
        count += len(params)
        _check_count("hyperparameters", count)
        section = _name("hyperparameters", section)
        result[section] = {
            _name("hyperparameters", key): _normalize_param(
                "hyperparameters", f"{section}/{key}", value, limits.PARAMETER_VALUE_MAX
            )
            for key, value in params.items()
        }
    return result


def normalize_configuration(raw: dict) -> dict:
    if not isinstance(raw, dict):
        raise InvalidInput("configuration must be an object", field="configuration")
    _check_count("configuration", len(raw))
    return {
        _name("configuration", key): _normalize_param(
            "configuration", key, value, limits.CONFIGURATION_VALUE_MAX
        )
        for key, value in raw.items()
    }


def _check_count(field: str, count: int) -> None:
    if count > limits.PARAMETERS_MAX:
        raise InvalidInput(f"{field}: at most {limits.PARAMETERS_MAX} entries", field=field)


def _name(field: str, name) -> str:
    name = str(name)
    if len(name) > limits.PARAMETER_NAME_MAX:
        raise InvalidInput(
            f"{field}: name {name[:40]!r}... is longer than {limits.PARAMETER_NAME_MAX} characters",
            field=field,
        )
    return name


def _normalize_param(field: str, label: str, value, max_value: int) -> dict:
    if isinstance(value, dict) and "value" in value:
        param = {
            "value": _as_text(field, label, value.get("value")),
            "type": str(value.get("type") or ""),
            "description": str(value.get("description") or ""),
        }
        if len(param["type"]) > limits.PARAMETER_TYPE_MAX:
            raise InvalidInput(f"{field}: {label!r} has a type name too long", field=field)
        if len(param["description"]) > limits.DESCRIPTION_MAX:
            raise InvalidInput(f"{field}: {label!r} has a description too long", field=field)
    elif isinstance(value, dict | list):
        raise InvalidInput(
            f"parameter {label!r}: give {{value, type}} or a plain value", field=field
        )
    else:
        param = {
            "value": _as_text(field, label, value),
            "type": _type_name(value),
            "description": "",
        }
    if len(param["value"]) > max_value:
        raise InvalidInput(
            f"{field}: the value of {label!r} is longer than {max_value} characters", field=field
        )
    if any("\x00" in text for text in (label, *param.values())):
        raise InvalidInput(f"{field}: {label!r} must not contain NUL characters", field=field)
    return param


def _as_text(field: str, label: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{field}: the value of {label!r} must be a finite number", field=field)
    if isinstance(value, dict | list):
        # {value: {...}}: kept as its JSON-ish text, bounded like any other value
        limits.json_value(field, value, limits.CONFIGURATION_VALUE_MAX)
    return str(value)


def _type_name(value) -> str:
    if value is None:
        return ""
    return type(value).__name__
