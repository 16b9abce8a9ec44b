"""What runs inside a function step's task (the entry of its generated script).

`run_function_step` attaches to the task, reads the function's kwargs from its parameters
(section `kwargs`, cast back to their types) and its inputs from artifacts (section
`kwargs_artifacts`: one URL each, downloaded and deserialised), calls the function, and
uploads each of its return values as an artifact named after `returns`.

A fan-out runs the same script in two more modes, set by its `map/mode` parameter: `items`
(a batch: each of the items in configuration `map_items` passed as the map's kwarg, one
after another, each one's status and result reported to the server) and `collect` (the
map's results, in order, stored as this task's artifacts, one list per return value).

Pickled values (what cannot be stored as numpy, pandas, JSON, text or a file) are loaded
only when the pipeline opted in (`allow_pickle`, recorded in the generated script from the
controller's own opt-in) or the environment does (`PIPELINES_ALLOW_PICKLE=1`).
"""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from . import fanout, parameters
from .artifacts import Artifact
from .client import get_client
from .serialization import pickle_allowed
from .storage import StorageManager
from .task import Task

KWARGS = "kwargs"
KWARGS_ARTIFACTS = "kwargs_artifacts"
# A map's collected results whose items are artifacts of their own (too large, or not
# JSON) hold those items' URLs: their indices are listed in the artifact's metadata.
MAP_ARTIFACT_ITEMS = "pipelines_map_artifact_items"
_FILES_PATH = re.compile(r"/files/(?P<artifact>[0-9a-f]{32})/")
# A batch reports its items at least this often (and once more at its end).
REPORT_SECONDS = 0.5


def run_function_step(
    function: Callable, returns: Sequence[str] = (), allow_pickle: bool = False
) -> None:
    task = Task.init()  # attached: the task as the server has it, overrides applied
    hyper = task.data["hyperparameters"]
    mode = (hyper.get("map", {}).get("mode") or {}).get("value", "")
    allow = allow_pickle or pickle_allowed()
    kwargs = read_kwargs(hyper, allow)
    if mode == "items":
        failed = _run_items(task, function, kwargs, list(returns), allow)
        if failed:
            print(f"{failed} item(s) failed", file=sys.stderr, flush=True)
            raise SystemExit(1)
    elif mode == "collect":
        _collect(task, hyper, list(returns))
    else:
        store_returns(task, function(**kwargs), list(returns))


# ---------------------------------------------------------------- inputs


def read_kwargs(hyper: dict, allow_pickle: bool) -> dict:
    """The function's kwargs from the task's parameters, typed, with artifact inputs read."""
    kwargs = {name: _typed(entry) for name, entry in hyper.get(KWARGS, {}).items()}
    for name, entry in hyper.get(KWARGS_ARTIFACTS, {}).items():
        url = entry.get("value", "")
        kwargs[name] = load_input(url, allow_pickle) if url else None
    return kwargs


def _typed(entry: dict) -> Any:
    value, type_name = entry.get("value", ""), entry.get("type", "")
    if value == "" and type_name in ("", "NoneType"):
        return None  # None, as the server stores it (an empty value of no type)
    return parameters.cast(value, type_name)


def load_input(url: str, allow_pickle: bool = False) -> Any:
    """The value at an artifact URL: one of this server's artifacts is deserialised by its
    kind (a fan-out's collected results with their items); any other URL is downloaded and
    given as a local path, as StorageManager does."""
    client = get_client()
    match = _FILES_PATH.search(urlsplit(url).path) if client.owns_url(url) else None
    if match is None:
        return StorageManager.get_local_copy(url)
    artifact = Artifact(client.get(f"artifacts/{match.group('artifact')}/"))
    value = artifact.get(allow_pickle=allow_pickle)
    for index in artifact.metadata.get(MAP_ARTIFACT_ITEMS) or ():
        if isinstance(value, list) and 0 <= index < len(value) and value[index]:
            value[index] = load_input(value[index], allow_pickle)
    return value


# ---------------------------------------------------------------- outputs


def returned(result: Any, returns: list[str]) -> dict:
    """Each return name with its value: one name takes the whole result, several unpack a
    tuple or list (as ClearML does)."""
    if not returns:
        return {}
    if len(returns) == 1 or not isinstance(result, tuple | list):
        result = [result]
    return dict(zip(returns, result, strict=False))


def store_returns(task: Task, result: Any, returns: list[str]) -> None:
    for name, value in returned(result, returns).items():
        task.upload_artifact(name, value)


# ---------------------------------------------------------------- a fan-out's batch


def _run_items(task: Task, function: Callable, kwargs: dict, returns: list, allow) -> int:
    config = task.data.get("configuration", {}).get("map_items", {})
    items = parameters.cast(config.get("value", "[]"), "list")
    section = task.data["hyperparameters"].get("map", {})
    kwarg = (section.get("kwarg") or {}).get("value") or "item"
    retries = int(parameters.cast((section.get("retries") or {}).get("value", "0"), "int") or 0)
    client = get_client()
    pending: list[dict] = []
    last_report = time.monotonic()
    failed = 0
    for index, value in items:
        started = time.time()
        report = {"index": index, "started": started}
        for attempt in range(retries + 1):
            try:
                result = function(**{**kwargs, kwarg: value})
            except Exception as error:  # noqa: BLE001 - an item's failure is recorded
                text = "".join(traceback.format_exception(error))
                print(f"item {index} (attempt {attempt + 1}) failed:\n{text}", file=sys.stderr)
                report.update(status="failed", message=text[-4000:])
                continue
            report.update(status="completed", message="")
            report.update(_item_values(task, index, returned(result, returns)))
            break
        failed += report["status"] == "failed"
        report["ended"] = time.time()
        pending.append(report)
        if time.monotonic() - last_report >= REPORT_SECONDS:
            _report(client, task, pending)
            last_report = time.monotonic()
    _report(client, task, pending)
    return failed


def _item_values(task: Task, index: int, values: dict) -> dict:
    """An item's return values inline when they are small plain JSON, otherwise uploaded
    as artifacts of the batch's task (`NAME.INDEX`), which the item names by URL."""
    inline, artifacts = {}, {}
    for name, value in values.items():
        if _small_json(value):
            inline[name] = value
        else:
            artifact = f"{name}.{index}"
            task.upload_artifact(artifact, value)
            artifacts[name] = task.artifacts[artifact].url
    return {"values": inline, "artifacts": artifacts}


def _small_json(value: Any) -> bool:
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return False
    try:
        return len(json.dumps(value, allow_nan=False)) <= fanout.ITEM_VALUES_MAX_CHARS // 2
    except (TypeError, ValueError):
        return False


def _report(client, task: Task, pending: list) -> None:
    while pending:
        batch, pending[:] = pending[:500], pending[500:]
        client.post(f"tasks/{task.id}/map_items/", {"items": batch})


# ---------------------------------------------------------------- a fan-out's collector


def _collect(task: Task, hyper: dict, returns: list) -> None:
    section = hyper.get("map", {})
    run_id, step = section["run"]["value"], section["step"]["value"]
    client = get_client()
    items: list[dict] = []
    while True:
        page = client.get(f"pipelines/{run_id}/items/", step=step, offset=len(items), limit=1000)
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["count"]:
            break
    failed = [item["index"] for item in items if item["status"] != "completed"]
    print(f"{len(items) - len(failed)} of {len(items)} items completed", flush=True)
    if failed:
        print(f"failed items: {', '.join(map(str, failed))}", flush=True)
    for name in returns or ["result"]:
        values, by_url = [], []
        for item in items:
            if item["status"] != "completed":
                values.append(None)
            elif name in (item.get("artifacts") or {}):
                by_url.append(item["index"])
                values.append(item["artifacts"][name])
            else:
                values.append((item.get("values") or {}).get(name))
        metadata = {MAP_ARTIFACT_ITEMS: by_url} if by_url else {}
        metadata["failed_items"] = failed[: fanout.NAMED_FAILURES_MAX]
        task.upload_artifact(name, values, metadata=metadata)
