"""Parameters travel as strings with a type name, as ClearML keeps them; cast back on read."""

import json
from typing import Any

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off", ""}


def encode(value: Any) -> dict:
    """{value: str, type: str} for one parameter value."""
    if isinstance(value, list | dict | tuple):
        return {"value": json.dumps(value), "type": type(value).__name__}
    if value is None:
        return {"value": "", "type": "NoneType"}
    if isinstance(value, bool):
        return {"value": "True" if value else "False", "type": "bool"}
    return {"value": str(value), "type": type(value).__name__}


def cast(text: str, type_name: str = "", default: Any = None) -> Any:
    """The typed value of a stored string: the default's type wins, then the stored type.

    A value that cannot be cast is returned as the string it is, never dropped.
    """
    target = type(default).__name__ if default is not None else type_name
    try:
        if target == "bool":
            lowered = str(text).strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            return text
        if target == "int":
            number = float(text)
            return int(number) if number.is_integer() else number
        if target == "float":
            return float(text)
        if target in ("list", "dict", "tuple"):
            loaded = json.loads(text) if text else ([] if target != "dict" else {})
            return tuple(loaded) if target == "tuple" else loaded
        if target == "NoneType":
            return None if text == "" else text
    except (TypeError, ValueError):
        return text
    return text


def flatten(hyperparameters: dict) -> dict[str, str]:
    """{"Section/name": "value"} as ClearML's get_parameters() returns it."""
    return {
        f"{section}/{name}": entry.get("value", "")
        for section, params in hyperparameters.items()
        for name, entry in params.items()
    }


def nest(flat: dict) -> dict:
    """{"Section/name": value} (a name without a section goes to General) -> sections."""
    nested: dict = {}
    for key, value in flat.items():
        section, _, name = str(key).partition("/")
        if not name:
            section, name = "General", section
        nested.setdefault(section, {})[name] = value
    return nested
