"""Why a step ran or was reused: what its cache key is made of, kept small on its node, and
the reason for the decision, found by comparing that with the last completed node of the
same step in the same pipeline (its controller's project and name)."""

import copy
import hashlib
import json

from django.db import connection

from pipelines import parameters

from .. import secrets, services
from ..choices import NodeStatus
from ..models import PipelineNode

# What a node keeps of its key's ingredients: enough to name what changed, bounded so a
# 1,000-step run keeps a few hundred kilobytes at most.
PARAMS_KEPT = 200
VALUE_CHARS = 200
SCRIPT_FIELDS = ("code", "entry_point", "commit", "diff")
CHANGES_KEPT = 10

RAN, REUSED = "ran", "reused"


def key_parts(base, overrides: dict, config: dict) -> dict:
    """The three things a cache key hashes: the base's script, its parameters with the
    overrides (task sections) applied, its configuration with the overrides applied."""
    params = copy.deepcopy(base.hyperparameters)
    for section, values in overrides.items():
        params.setdefault(section, {}).update(values)
    script = {k: base.script.get(k) for k in SCRIPT_FIELDS}
    merged_config = {**base.configuration, **services.normalize_configuration(config)}
    return {"script": script, "params": params, "config": merged_config}


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def summary(parts: dict, inputs: dict, from_references: set) -> dict:
    """The bounded JSON a node keeps: the script's digest, its parameters flattened (those
    a reference filled in are explained by `inputs`, what the references read), and each
    configuration entry's digest."""
    flat = parameters.flatten(parts["params"]) if parts["params"] else {}
    params = {
        name: _kept(name, value)
        for name, value in sorted(flat.items())
        if name not in from_references
    }
    kept = dict(list(params.items())[:PARAMS_KEPT])
    result = {
        "script": digest(parts["script"]),
        "params": kept,
        "config": {name: digest(value)[:16] for name, value in parts["config"].items()},
        "inputs": {name: _kept(name, value) for name, value in sorted(inputs.items())},
    }
    if len(params) > len(kept):
        result["params_digest"] = digest(params)
    return result


def _kept(name: str, value) -> str:
    """A value as the summary keeps it; a secret's only as a digest, never shown."""
    if secrets.is_sensitive(name.replace(".", "/").rsplit("/", 1)[-1]):
        return SECRET_PREFIX + digest(value)[:16]
    return _short(value)


SECRET_PREFIX = "secret:"  # noqa: S105 - a marker, not a password


def _short(value) -> str:
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def changes(before: dict | None, now: dict) -> list[dict]:
    """What differs between two summaries, most telling first: the script, what a parent
    produced, the parameters, the configuration."""
    if not before:
        return [{"code": "first_run", "text": "first run of this definition"}]
    found = []
    if before.get("script") != now.get("script"):
        found.append({"code": "script_changed", "text": "script changed"})
    old_inputs, new_inputs = before.get("inputs", {}), now.get("inputs", {})
    for name in sorted(set(old_inputs) | set(new_inputs)):
        if old_inputs.get(name) != new_inputs.get(name):
            found.append(_input_change(name, old_inputs.get(name), new_inputs.get(name)))
    old_params, new_params = before.get("params", {}), now.get("params", {})
    for name in sorted(set(old_params) | set(new_params)):
        if old_params.get(name) != new_params.get(name):
            if SECRET_PREFIX in f"{old_params.get(name)}{new_params.get(name)}":
                found.append(
                    {
                        "code": "parameter_changed",
                        "text": f"parameter `{name}` changed",
                        "parameter": name,
                    }
                )
                continue
            found.append(
                {
                    "code": "parameter_changed",
                    "text": f"parameter `{name}` changed from "
                    f"{_shown(old_params.get(name))} to {_shown(new_params.get(name))}",
                    "parameter": name,
                }
            )
    if before.get("params_digest") != now.get("params_digest"):
        found.append({"code": "parameter_changed", "text": "parameters changed"})
    old_config, new_config = before.get("config", {}), now.get("config", {})
    for name in sorted(set(old_config) | set(new_config)):
        if old_config.get(name) != new_config.get(name):
            found.append(
                {"code": "configuration_changed", "text": f"configuration `{name}` changed"}
            )
    return found[:CHANGES_KEPT]


def _shown(value) -> str:
    return "(none)" if value is None else value


def _input_change(name: str, old, new) -> dict:
    step, _, rest = name.partition(".")
    if rest.startswith("artifacts."):
        artifact = rest.removeprefix("artifacts.")
        return {
            "code": "artifact_changed",
            "text": f"parent artifact `{artifact}` changed hash",
            "step": step,
        }
    if rest == "id":
        return {
            "code": "parent_ran",
            "text": f"parent step `{step}` ran again (task {_shown(old)} → {_shown(new)})",
            "step": step,
        }
    if step == "pipeline":
        return {
            "code": "parameter_changed",
            "text": f"pipeline parameter `{rest}` changed from {_shown(old)} to {_shown(new)}",
            "parameter": rest,
        }
    return {
        "code": "parameter_changed",
        "text": f"`{name}` changed from {_shown(old)} to {_shown(new)}",
        "parameter": name,
    }


def decide(now: dict, previous: dict | None, caching: bool, hit=None) -> dict:
    """The node's decision: reused (a cached result) or ran, with its reason. `previous`
    is {run, task, inputs} of the last completed node of the step, or None."""
    found = changes(previous and previous["inputs"], now)
    decision = {
        "caching": caching,
        "changes": found,
        "compared_with": ({"run": previous["run"], "task": previous["task"]} if previous else None),
    }
    if hit is not None:
        return {
            **decision,
            "outcome": REUSED,
            "code": "cache_hit",
            "reason": f"reused task {hit.id}: an earlier run had the same inputs",
            "task": hit.id,
        }
    if not caching:
        code, reason = "caching_off", "caching off for this step"
    elif found:
        code, reason = found[0]["code"], found[0]["text"]
    else:
        code, reason = "no_result", "no completed result with these inputs"
    return {**decision, "outcome": RAN, "code": code, "reason": reason}


def reused_from(run_id: str, task_id: str | None, step: str) -> dict:
    return {
        "outcome": REUSED,
        "code": "reused_from_run",
        "reason": f"reused from run {run_id} (rerun from `{step}`)",
        "run": run_id,
        "task": task_id,
        "changes": [],
        "caching": None,
        "compared_with": None,
    }


def previous_nodes(
    project_id, controller_name: str, names, exclude_run: str | None, with_inputs: bool = True
) -> dict:
    """The last completed (or reused) node of each named step in the pipeline's earlier
    runs, as {name: {run, task, node, inputs}}; one statement. Without `with_inputs` the
    summaries are left out (`inputs_of` reads the few a plan needs)."""
    rows = PipelineNode.objects.filter(
        run__controller__project_id=project_id,
        run__controller__name=controller_name,
        map_step="",
        status__in=(NodeStatus.COMPLETED, NodeStatus.CACHED),
    )
    if exclude_run:
        rows = rows.exclude(run_id=exclude_run)
    if not with_inputs:
        rows = rows.exclude(key_inputs={})
    # No filter on the names: a run's steps are its pipeline's, and a thousand bound names
    # cost more than the rows of other steps.
    fields = ("name", "run_id", "task_id", "pk", *(("key_inputs",) if with_inputs else ()))
    if connection.vendor == "postgresql":
        rows = rows.order_by("name", "-updated", "-pk").distinct("name")
    else:
        rows = rows.order_by("-updated", "-pk")
    wanted = set(names)
    found: dict = {}
    for name, run_id, task_id, pk, *inputs in rows.values_list(*fields):
        if name in wanted and name not in found and (not with_inputs or inputs[0]):
            found[name] = {"run": run_id, "task": task_id, "node": pk}
            if with_inputs:
                found[name]["inputs"] = inputs[0]
    return found


def inputs_of(previous: dict, names) -> None:
    """Fill in the summaries of the previous nodes of `names` (one statement)."""
    wanted = {previous[name]["node"]: name for name in names if name in previous}
    if not wanted:
        return
    rows = PipelineNode.objects.filter(pk__in=list(wanted)).values_list("pk", "key_inputs")
    for pk, inputs in rows.order_by():
        previous[wanted[pk]]["inputs"] = inputs
