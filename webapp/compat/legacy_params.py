"""API 2.8's parameters, as clearml-server keeps them since 2.9.

Before 2.9 a task's parameters were `execution.parameters` ({name: value}) and its model
design `execution.model_desc` ({name: value}). Sent that way (by any client), they become
hyperparameters of type `legacy` in section `Args` (a `TF_DEFINE/x` name: `x` in section
`TF_DEFINE`) and configuration items of type `legacy`; an edit that sends them replaces the
legacy ones it had. A client of API 2.8 or older reads them back in the old place too.
"""

import copy

from .envelope import bad_request

LEGACY_TYPE = "legacy"
DEFAULT_SECTION = "Args"
TF_DEFINE = "TF_DEFINE"


def _split_name(full_name: str) -> tuple[str, str]:
    section, _, name = full_name.partition("/")
    if section != TF_DEFINE:
        return DEFAULT_SECTION, full_name
    if not name:
        raise bad_request("Parameter name cannot be empty", subcode=12)
    return section, name


def _legacy_entry(value) -> dict:
    return {"value": "" if value is None else str(value), "type": LEGACY_TYPE, "description": ""}


def _without_legacy(entries: dict) -> dict:
    return {k: v for k, v in entries.items() if (v or {}).get("type") != LEGACY_TYPE}


def apply_legacy(task, body: dict, changes: dict) -> None:
    """Fold a create/edit body's `execution.parameters` and `execution.model_desc` into
    `changes` (our hyperparameters and configuration), as clearml-server does."""
    execution = body.get("execution")
    if not isinstance(execution, dict):
        return
    parameters, model_desc = execution.get("parameters"), execution.get("model_desc")
    for field, value in (("parameters", parameters), ("model_desc", model_desc)):
        if value is not None and not isinstance(value, dict):
            raise bad_request(f"execution.{field} must be an object", subcode=12)
    # An empty one changes nothing (clearml-server would drop the legacy ones): our
    # documents carry an empty `execution.parameters`, which clients send back on edits.
    if parameters:
        params = changes.get("hyperparameters")
        if params is None:
            params = {}
            for section, entries in copy.deepcopy(
                getattr(task, "hyperparameters", None) or {}
            ).items():
                kept = _without_legacy(entries or {})
                if kept:
                    params[section] = kept
        for full_name, value in parameters.items():
            section, name = _split_name(str(full_name))
            params.setdefault(section, {})[name] = _legacy_entry(value)
        changes["hyperparameters"] = params
    if model_desc:
        config = changes.get("configuration")
        if config is None:
            config = _without_legacy(copy.deepcopy(getattr(task, "configuration", None) or {}))
        for name, value in model_desc.items():
            config[str(name)] = _legacy_entry(value)
        changes["configuration"] = config


def is_old_client(version: str) -> bool:
    try:
        major, minor = (int(part) for part in str(version).split(".")[:2])
    except ValueError:
        return False  # no version in the path: the newest API
    return (major, minor) < (2, 9)


def for_old_clients(docs: list[dict], version: str) -> None:
    """Copy the legacy parameters back to `execution` for a client of API 2.8 or older."""
    if not is_old_client(version):
        return
    for doc in docs:
        execution = doc.setdefault("execution", {})
        params = {
            (name if section != TF_DEFINE else f"{section}/{name}"): item.get("value")
            for section, entries in (doc.get("hyperparams") or {}).items()
            for name, item in (entries or {}).items()
            if item.get("type") == LEGACY_TYPE
        }
        if params:
            execution["parameters"] = params
        design = {
            name: item.get("value")
            for name, item in (doc.get("configuration") or {}).items()
            if item.get("type") == LEGACY_TYPE
        }
        if design:
            execution["model_desc"] = design
