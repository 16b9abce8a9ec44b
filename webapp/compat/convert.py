"""Translating between ClearML's field shapes and ours, both ways.

hyperparameters: ClearML {section: {name: {section, name, value, type, description}}}
                 ours    {section: {name: {value, type, description}}} (an empty type or
                 description is one not given: ClearML's answer leaves it out)
configuration:   ClearML {name: {name, value, type, description}}, ours without `name`
script:          ClearML {binary, repository, branch, version_num, tag, entry_point,
                 working_dir, diff, requirements{pip, conda}}; ours {entry_point, working_dir,
                 code, repository, branch, commit, diff, requirements[list], binary}.
A standalone script arrives whole in ClearML's `diff` (not starting with "diff "): that is
our `code`; a real diff against a repository stays a diff.
"""

import hashlib

from webapp.core.choices import ArtifactKind

# Marks a task created through the ClearML protocol (it survives the SDK's own system-tag
# edits and clones), so a worker knows to run it with the `clearml` SDK's environment.
CLEARML_SYSTEM_TAG = "clearml"

# ----------------------------------------------------------------- parameters


def hyperparams_to_ours(raw) -> dict:
    if not isinstance(raw, dict):
        return {}
    result: dict = {}
    for section, params in raw.items():
        if not isinstance(params, dict):
            continue
        result[str(section)] = {
            str(name): _param_to_ours(value) for name, value in params.items() if name
        }
    return result


def _param_to_ours(value) -> dict:
    if isinstance(value, dict):
        return {
            "value": "" if value.get("value") is None else str(value.get("value")),
            "type": str(value.get("type") or ""),
            "description": str(value.get("description") or ""),
        }
    return {"value": "" if value is None else str(value), "type": "", "description": ""}


def _described(item: dict, entry: dict) -> dict:
    """`type` and `description` only when they were given: clearml-server stores what it
    is sent and answers no empty field for one left out (the SDK reads them as optional)."""
    for field in ("type", "description"):
        if entry.get(field):
            item[field] = entry[field]
    return item


def hyperparams_to_clearml(ours: dict) -> dict:
    return {
        section: {
            name: _described(
                {"section": section, "name": name, "value": entry.get("value", "")}, entry
            )
            for name, entry in (params or {}).items()
        }
        for section, params in (ours or {}).items()
    }


def configuration_to_ours(raw) -> dict:
    if not isinstance(raw, dict):
        return {}
    return {str(name): _param_to_ours(value) for name, value in raw.items() if name}


def configuration_to_clearml(ours: dict) -> dict:
    return {
        name: _described({"name": name, "value": entry.get("value", "")}, entry)
        for name, entry in (ours or {}).items()
    }


# ----------------------------------------------------------------- script


def is_standalone_script(diff: str) -> bool:
    """The SDK's own test (LocalClearmlJob): a whole script, not a diff against a repo."""
    return bool(diff) and not diff.lstrip().startswith("diff ")


def requirement_lines(requirements) -> list[str]:
    """ClearML's {pip: "text"} as our list of requirement lines (comments dropped)."""
    if isinstance(requirements, list):
        return [str(line) for line in requirements]
    if not isinstance(requirements, dict):
        return []
    pip = requirements.get("pip") or ""
    if isinstance(pip, list):
        pip = "\n".join(str(line) for line in pip)
    lines = [line.strip() for line in str(pip).splitlines()]
    return [line.replace(" ", "") for line in lines if line and not line.startswith("#")]


# ClearML's script fields, and the field of ours each is kept in ("" when only ClearML has it).
SCRIPT_FIELDS = {
    "binary": "binary",
    "repository": "repository",
    "branch": "branch",
    "version_num": "commit",
    "tag": "",
    "entry_point": "entry_point",
    "working_dir": "working_dir",
    "diff": "code",
    "requirements": "requirements",
}


def script_to_ours(raw, current: dict | None = None) -> tuple[dict, dict]:
    """(our script, ClearML-only leftovers) from a ClearML script object."""
    raw = raw if isinstance(raw, dict) else {}
    script = dict(current or {})
    for ours, theirs in (
        ("entry_point", "entry_point"),
        ("working_dir", "working_dir"),
        ("binary", "binary"),
        ("repository", "repository"),
        ("branch", "branch"),
        ("commit", "version_num"),
    ):
        if theirs in raw:
            script[ours] = raw.get(theirs) or ""
    if "diff" in raw:
        diff = raw.get("diff") or ""
        if is_standalone_script(diff):
            script["code"], script["diff"] = diff, ""
        else:
            script["code"], script["diff"] = "", diff
    # The fields a ClearML client set: a task made through its door is answered with those
    # (and any our side filled in since), as clearml-server answers only what was set.
    leftovers = {"fields": sorted(set(raw) & set(SCRIPT_FIELDS))}
    if "tag" in raw:
        leftovers["tag"] = raw.get("tag") or ""
    if "requirements" in raw:
        script["requirements"] = requirement_lines(raw.get("requirements"))
        leftovers["requirements"] = raw.get("requirements") or {}
    return script, leftovers


def script_to_clearml(script: dict, leftovers: dict) -> dict:
    script = script or {}
    requirements = leftovers.get("requirements")
    if requirements is None:
        requirements = {"pip": "\n".join(script.get("requirements") or [])}
    document = {
        "binary": script.get("binary") or "python3",
        "repository": script.get("repository") or "",
        "branch": script.get("branch") or "",
        "version_num": script.get("commit") or "",
        "tag": leftovers.get("tag") or "",
        "entry_point": script.get("entry_point") or "",
        "working_dir": script.get("working_dir") or ".",
        "diff": script.get("code") or script.get("diff") or "",
        "requirements": requirements,
    }
    sent = leftovers.get("fields")
    if not isinstance(sent, list):
        return document
    return {
        name: value
        for name, value in document.items()
        if name in sent
        or (SCRIPT_FIELDS[name] and script.get(SCRIPT_FIELDS[name]))
        or (name == "diff" and script.get("diff"))
    }


# ----------------------------------------------------------------- artifacts

ARTIFACT_KINDS = {
    "custom": ArtifactKind.FILE,
    "archive": ArtifactKind.FOLDER,
    "numpy": ArtifactKind.NUMPY,
    "pandas": ArtifactKind.PANDAS,
    "json": ArtifactKind.JSON,
    "yaml": ArtifactKind.TEXT,
    "string": ArtifactKind.TEXT,
    "text": ArtifactKind.TEXT,
    "image": ArtifactKind.IMAGE,
    "pickle": ArtifactKind.PICKLE,
}
OUR_KIND_TO_CLEARML = {
    ArtifactKind.FILE: "custom",
    ArtifactKind.FOLDER: "archive",
    ArtifactKind.NUMPY: "numpy",
    ArtifactKind.PANDAS: "pandas",
    ArtifactKind.JSON: "JSON",
    ArtifactKind.TEXT: "string",
    ArtifactKind.IMAGE: "image",
    ArtifactKind.PICKLE: "pickle",
}


def artifact_kind(clearml_type: str) -> str:
    return ARTIFACT_KINDS.get(str(clearml_type or "").lower(), ArtifactKind.FILE)


# ----------------------------------------------------------------- metrics


def last_metrics_to_clearml(ours: dict) -> dict:
    """Our {"title/series": {iteration, value, min, max, ...}} as ClearML's
    {md5(metric): {md5(variant): {value, min_value, max_value, their iterations, ...}}}."""
    result: dict = {}
    for key, point in (ours or {}).items():
        metric, _, variant = key.partition("/")
        metric_hash = hashlib.md5(metric.encode(), usedforsecurity=False).hexdigest()
        variant_hash = hashlib.md5(variant.encode(), usedforsecurity=False).hexdigest()
        value = point.get("value")
        iteration = point.get("iteration", 0)
        entry = {
            "metric": metric,
            "variant": variant,
            "value": value,
            "min_value": point.get("min", value),
            "max_value": point.get("max", value),
            "iter": iteration,
            # Kept since these were; older rows have only the last point.
            "min_value_iteration": point.get("min_iteration", iteration),
            "max_value_iteration": point.get("max_iteration", iteration),
            "first_value": point.get("first_value", value),
            "first_value_iteration": point.get("first_iteration", iteration),
        }
        if point.get("count"):
            entry["count"] = point["count"]
            entry["mean_value"] = point.get("total", 0.0) / point["count"]
        result.setdefault(metric_hash, {})[variant_hash] = entry
    return result
