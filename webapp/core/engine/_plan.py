"""A plan: which steps a run about to start would run and which it would reuse, and why,
decided as the engine's launch will decide them (the same cache key, the same summary of
its inputs, compared with the same earlier nodes), without creating anything."""

from collections import deque
from types import SimpleNamespace

from pipelines import dag, parameters

from .. import services
from ..errors import InvalidInput
from ..models import Task
from . import _why
from ._cache import cache_key, cached_task
from ._launch import from_references
from ._references import reference_lookup

# What a step would do.
RAN, REUSED, FAILS, SKIPPED = _why.RAN, _why.REUSED, "fails", "skipped"


def plan(
    steps: list,
    pipeline_parameters: dict,
    *,
    project_id,
    controller_name: str,
    reused: dict | None = None,
) -> list[dict]:
    """The plan of a run of the checked `steps`, one entry per step in a topological order:
    {name, outcome, code, reason, changes, task}. `reused` maps a step to the (task,
    decision) a rerun takes over from the run it comes from."""
    reused = reused or {}
    index = dag.index_graph(steps)
    order = _topological(index)
    previous = _why.previous_nodes(
        project_id, controller_name, index.steps, None, with_inputs=False
    )
    bases = {t.pk: t for t in Task.objects.filter(pk__in={s["base_task_id"] for s in steps})}
    known: dict = {name: SimpleNamespace(task=task) for name, (task, _) in reused.items()}
    work = SimpleNamespace(shape=SimpleNamespace(parameters=pipeline_parameters))
    lookup = reference_lookup(work, known)
    fresh: set = set()  # steps whose new tasks do not exist yet
    broken: set = set()
    entries = []
    explained = []  # (entry, decision): their reasons read the summaries at the end
    for name in order:
        step = index.steps[name]
        if name in reused:
            task, decision = reused[name]
            entries.append(_entry(name, decision, task.pk))
            continue
        if broken & set(index.parents[name]):
            states = {p: "failed" if p in broken else "completed" for p in index.parents[name]}
            if dag.decide_step(index, name, states) == "skip":
                broken.add(name)
                entries.append(_entry(name, _other(SKIPPED, "skipped", "a parent would fail")))
                continue
        decision = _decide(name, step, bases, lookup, fresh, previous.get(name))
        if "summary" in decision:
            explained.append((len(entries), decision))
        if decision.get("hit") is not None:
            known[name] = SimpleNamespace(task=decision["hit"])
            decision["task"] = decision["hit"].pk
        elif decision["outcome"] == FAILS:
            broken.add(name)
        else:
            fresh.add(name)
        entries.append(_entry(name, decision, decision.get("task")))
    _why.inputs_of(previous, [entries[i]["name"] for i, _ in explained])
    for i, found in explained:
        name = entries[i]["name"]
        before = previous.get(name)
        if before is not None and "inputs" not in before:
            before = None
        decision = _why.decide(found["summary"], before, found["caching"], found.get("hit"))
        entries[i] = _entry(name, decision, found.get("task"))
    return entries


def _decide(name: str, step: dict, bases: dict, lookup, fresh: set, previous) -> dict:
    caching = bool(step.get("cache_executed_step"))
    if step.get("map") is not None:
        return _other(RAN, "fan_out", "a fan-out")
    base = bases.get(str(step["base_task_id"]))
    if base is None:
        return _other(FAILS, "base_missing", f"base task {step['base_task_id']} no longer exists")
    waiting = sorted(
        {
            ref.step
            for value in (
                *step["parameter_override"].values(),
                *step["configuration_overrides"].values(),
            )
            for ref in dag.parse_references(value)
            if ref.kind != "pipeline" and ref.step in fresh
        }
    )
    if waiting:
        # What a parent that runs again will produce is not known yet: its new task (its
        # id, its artifacts' addresses) makes a new key, so the step runs.
        changes = [
            {"code": "parent_ran", "text": f"parent step `{parent}` runs again", "step": parent}
            for parent in waiting
        ]
        if not caching:
            code, reason = "caching_off", "caching off for this step"
        elif previous is None:
            code, reason = "first_run", "first run of this definition"
        else:
            code, reason = "parent_ran", changes[0]["text"]
        if previous is None:
            changes = [{"code": "first_run", "text": "first run of this definition"}]
        return {
            "outcome": RAN,
            "code": code,
            "reason": reason,
            "changes": changes,
            "caching": caching,
            "compared_with": {"run": previous["run"], "task": previous["task"]}
            if previous
            else None,
        }
    lookup.seen = {}
    try:
        params = dag.resolve_overrides(step["parameter_override"], lookup)
        config = dag.resolve_overrides(step["configuration_overrides"], lookup)
        overrides = services.normalize_hyperparameters(parameters.nest(params))
        parts = _why.key_parts(base, overrides, config)
    except dag.UnresolvedReference as error:
        return _other(FAILS, "unresolved", f"cannot resolve {error.ref.text}: {error.reason}")
    except (InvalidInput, ValueError, TypeError) as error:
        reason = error.message if isinstance(error, InvalidInput) else str(error)
        return _other(FAILS, "invalid", f"cannot launch: {reason}"[:2000])
    summary = _why.summary(parts, lookup.seen, from_references(step))
    hit = cached_task(cache_key(base, overrides, config, parts)) if caching else None
    # The reason is given at the end, once the summaries it compares with are read.
    decision = {"outcome": REUSED if hit else RAN, "summary": summary, "caching": caching}
    if hit is not None:
        decision["hit"] = hit
    return decision


def _other(outcome: str, code: str, reason: str) -> dict:
    return {"outcome": outcome, "code": code, "reason": reason, "changes": []}


def _entry(name: str, decision: dict, task_id) -> dict:
    return {
        "name": name,
        "outcome": decision["outcome"],
        "code": decision.get("code", ""),
        "reason": decision.get("reason", ""),
        "changes": decision.get("changes", []),
        "task": task_id,
    }


def _topological(index: dag.GraphIndex) -> list:
    waiting = {name: len(parents) for name, parents in index.parents.items()}
    ready = deque(name for name, count in waiting.items() if count == 0)
    order = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for child in index.children.get(name, ()):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return order
