"""Two runs of a pipeline side by side, aligned by step name: each step's status, duration,
parameters (those that differ marked), script (a bounded unified diff), artifacts (same or
different hash, size) and last metric values with their deltas.

A step's comparison is a list of columns, each a function of the two nodes (`COLUMNS`), so
another one (resources, say) is one function more. Reads a fixed number of statements
whatever the size of the runs: both runs' nodes with their tasks, and all their artifacts.
"""

import difflib
import functools
from collections import defaultdict
from types import SimpleNamespace

from pipelines import parameters as flat_parameters

from . import access, secrets
from .errors import InvalidInput, NotFound
from .models import Artifact, PipelineNode, PipelineRun

SCRIPT_DIFF_LINES = 400
SCRIPT_CHARS = 200_000
PARAMETERS_SHOWN = 500
TASK_FIELDS = (
    "task__id",
    "task__status",
    "task__script",
    "task__hyperparameters",
    "task__last_metrics",
    "task__started",
    "task__completed",
    "task__resource_cpu_seconds",
    "task__resource_peak_rss_bytes",
    "task__resource_wall_seconds",
    "task__resource_gpu_seconds",
)
# What a step used, as its worker measured it (the Task's resource_* fields).
RESOURCES = ("cpu_seconds", "peak_rss_bytes", "wall_seconds", "gpu_seconds")


def previous_run(run: PipelineRun, user, key=None) -> PipelineRun | None:
    """The run of the same pipeline (its controller's project and name) started last
    before `run`, among those the caller sees."""
    return (
        PipelineRun.objects.defer("steps", "parameters")
        .filter(
            controller__in=access.visible_tasks(user, key),
            controller__project_id=run.controller.project_id,
            controller__name=run.controller.name,
            created__lt=run.created,
        )
        .order_by("-created")
        .first()
    )


def diff(run: PipelineRun, other: PipelineRun) -> dict:
    """The two runs as `a` (the earlier) and `b` (the later), and their steps aligned."""
    if run.pk == other.pk:
        raise InvalidInput("compare a run with another run", field="other")
    run, other = sorted((run, other), key=lambda r: (r.created, r.pk))
    nodes_a, nodes_b = _nodes(run), _nodes(other)
    artifacts = _artifacts([run, other])
    names = [*nodes_a, *(name for name in nodes_b if name not in nodes_a)]
    steps = []
    for name in names:
        a, b = nodes_a.get(name), nodes_b.get(name)
        entry = {"name": name, "in": [a is not None, b is not None]}
        for column in COLUMNS:
            entry[column.__name__] = column(a, b, artifacts)
        entry["same"] = _same(entry)
        steps.append(entry)
    return {
        "a": _run_summary(run),
        "b": _run_summary(other),
        "steps": steps,
        "changed_steps": [s["name"] for s in steps if not s["same"]],
    }


def _run_summary(run: PipelineRun) -> dict:
    return {
        "id": run.pk,
        "status": run.status,
        "created": run.created,
        "completed": run.completed,
        "rerun_of": run.rerun_of_id,
        "rerun_from_step": run.rerun_from_step,
    }


def _nodes(run: PipelineRun) -> dict:
    """The run's nodes as plain rows (a model instance per node and task costs more than the
    whole comparison of a 1,000-step run)."""
    rows = (
        PipelineNode.objects.filter(run_id=run.pk, map_step="")
        .order_by("position")
        .values_list("name", "status", "decision", "task_id", *TASK_FIELDS[1:])
    )
    nodes = {}
    for name, status, decision, task_id, *task in rows:
        fields = dict(zip(TASK_FIELDS[1:], task, strict=True))
        nodes[name] = SimpleNamespace(
            name=name,
            status=status,
            decision=decision,
            task_id=task_id,
            task=None
            if task_id is None
            else SimpleNamespace(
                id=task_id, **{key.removeprefix("task__"): value for key, value in fields.items()}
            ),
        )
    return nodes


def _artifacts(runs: list) -> dict:
    """Every artifact of the two runs' tasks, in one statement (a subquery: a list of a
    thousand ids costs Django more to bind than the query takes)."""
    found: dict = defaultdict(dict)
    tasks = PipelineNode.objects.filter(run_id__in=[run.pk for run in runs]).values("task_id")
    rows = Artifact.objects.filter(task_id__in=tasks).values_list(
        "task_id", "name", "sha256", "size"
    )
    for task_id, name, sha, size in rows.order_by():
        found[task_id][name] = {"sha256": sha, "size": size}
    return found


# ---------------------------------------------------------------- the columns


def status(a, b, _artifacts) -> dict:
    def one(node):
        if node is None:
            return None
        return {
            "status": node.status,
            "task": node.task_id,
            "outcome": (node.decision or {}).get("outcome", ""),
            "reason": (node.decision or {}).get("reason", ""),
        }

    return {"a": one(a), "b": one(b), "same_task": bool(a and b and a.task_id == b.task_id)}


def duration(a, b, _artifacts) -> dict:
    def seconds(node):
        task = node.task if node is not None else None
        if task is None or not task.started or not task.completed:
            return None
        return round((task.completed - task.started).total_seconds(), 3)

    first, second = seconds(a), seconds(b)
    delta = None if first is None or second is None else round(second - first, 3)
    return {"a": first, "b": second, "delta": delta}


def resources(a, b, _artifacts) -> dict:
    """CPU, peak memory, wall and GPU time of each run's task, and how they changed; None
    where a step did not run (or was reused) or its worker measured nothing."""

    def used(node):
        task = node.task if node is not None else None
        if task is None:
            return {name: None for name in RESOURCES}
        return {name: getattr(task, f"resource_{name}") for name in RESOURCES}

    first, second = used(a), used(b)
    return {
        name: {
            "a": first[name],
            "b": second[name],
            "delta": None
            if first[name] is None or second[name] is None
            else round(second[name] - first[name], 3),
        }
        for name in RESOURCES
    }


def parameters(a, b, _artifacts) -> list:
    def flat(node):
        if node is None or node.task is None:
            return {}
        values = flat_parameters.flatten(node.task.hyperparameters or {})
        return {
            name: secrets.MASK if value not in ("", None) and _secret(name) else value
            for name, value in values.items()
        }

    first, second = flat(a), flat(b)
    names = sorted(set(first) | set(second))
    rows = [
        {"name": n, "a": first.get(n), "b": second.get(n), "changed": first.get(n) != second.get(n)}
        for n in names
    ]
    rows.sort(key=lambda row: not row["changed"])  # changed ones first, then kept order
    return rows[:PARAMETERS_SHOWN]


@functools.lru_cache(maxsize=4096)
def _secret(name: str) -> bool:
    """Masked as presenters mask a task's parameters (the runs' steps repeat their names)."""
    return secrets.is_sensitive(name.rsplit("/", 1)[-1])


def script(a, b, _artifacts) -> dict:
    def text(node):
        if node is None or node.task is None:
            return ""
        value = node.task.script or {}
        return str(value.get("code") or value.get("diff") or "")[:SCRIPT_CHARS]

    def label(node):
        return (node.task.script or {}).get("entry_point", "") if node and node.task else ""

    if a is None or a.task is None or b is None or b.task is None:
        return {"same": False, "missing": True, "diff": [], "truncated": False}
    first, second = text(a), text(b)
    if first == second:
        return {"same": True, "missing": False, "diff": [], "truncated": False}
    lines = list(
        difflib.unified_diff(
            first.splitlines(),
            second.splitlines(),
            fromfile=f"a/{label(a) or 'script'}",
            tofile=f"b/{label(b) or 'script'}",
            lineterm="",
            n=2,
        )
    )
    return {
        "same": False,
        "missing": False,
        "diff": lines[:SCRIPT_DIFF_LINES],
        "truncated": len(lines) > SCRIPT_DIFF_LINES,
    }


def artifacts(a, b, found) -> list:
    first = found.get(a.task_id, {}) if a is not None else {}
    second = found.get(b.task_id, {}) if b is not None else {}
    return [
        {
            "name": name,
            "a": first.get(name),
            "b": second.get(name),
            "same": bool(first.get(name) and second.get(name))
            and first[name]["sha256"] == second[name]["sha256"],
        }
        for name in sorted(set(first) | set(second))
    ]


def metrics(a, b, _artifacts) -> list:
    def last(node):
        if node is None or node.task is None:
            return {}
        return {k: v.get("value") for k, v in (node.task.last_metrics or {}).items()}

    first, second = last(a), last(b)
    rows = []
    for name in sorted(set(first) | set(second)):
        x, y = first.get(name), second.get(name)
        delta = y - x if isinstance(x, int | float) and isinstance(y, int | float) else None
        rows.append({"name": name, "a": x, "b": y, "delta": delta})
    return rows


# Each step's comparison, in order; a column is a function (node a, node b, artifacts by
# task) whose name is its key in the answer.
COLUMNS = [status, duration, resources, parameters, script, artifacts, metrics]


def _same(entry: dict) -> bool:
    """Whether the step did the same thing in both runs: the same task, or the same
    parameters, script and artifact hashes."""
    if not all(entry["in"]):
        return False
    if entry["status"]["same_task"]:
        return True
    return (
        not any(row["changed"] for row in entry["parameters"])
        and entry["script"]["same"]
        and all(row["same"] for row in entry["artifacts"])
    )


def runs_to_compare(run_id: str, other_id: str | None, user, key=None):
    """The caller's run and the one to compare it with (the previous run when none is
    named); either unseen answers as not found."""
    # Their definitions are not compared (the nodes are): a 1,000-step one costs to decode.
    runs = PipelineRun.objects.filter(controller__in=access.visible_tasks(user, key)).defer(
        "steps", "parameters"
    )
    run = runs.select_related("controller").filter(pk=run_id).first()
    if run is None:
        raise NotFound("pipeline run not found")
    if other_id:
        other = runs.filter(pk=other_id).first()
    else:
        other = previous_run(run, user, key)
    if other is None:
        raise NotFound("no run to compare with" if not other_id else "pipeline run not found")
    return run, other
