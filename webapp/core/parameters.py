"""Task parameters as stored: every value a string, with its type and a description, so a
value reads back exactly as it was given whatever its Python type."""

from .errors import InvalidInput


def normalize_hyperparameters(raw: dict) -> dict:
    """{section: {name: value | {value, type, description}}} with values kept as strings."""
    if not isinstance(raw, dict):
        raise InvalidInput("hyperparameters must be an object of sections")
    result: dict = {}
    for section, params in raw.items():
        if not isinstance(params, dict):
            raise InvalidInput(f"hyperparameter section {section!r} must be an object")
        result[str(section)] = {
            str(key): _normalize_param(f"{section}/{key}", value) for key, value in params.items()
        }
    return result


def normalize_configuration(raw: dict) -> dict:
    if not isinstance(raw, dict):
        raise InvalidInput("configuration must be an object")
    return {str(key): _normalize_param(key, value) for key, value in raw.items()}


def _normalize_param(label: str, value) -> dict:
    if isinstance(value, dict) and "value" in value:
        return {
            "value": _as_text(value.get("value")),
            "type": str(value.get("type") or ""),
            "description": str(value.get("description") or ""),
        }
    if isinstance(value, dict | list):
        raise InvalidInput(f"parameter {label!r}: give {{value, type}} or a plain value")
    return {"value": _as_text(value), "type": _type_name(value), "description": ""}


def _as_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _type_name(value) -> str:
    if value is None:
        return ""
    return type(value).__name__
