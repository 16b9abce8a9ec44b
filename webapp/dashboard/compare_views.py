"""Comparing tasks: hyperparameters side by side with the differences marked, scalars
overlaid, plots and debug samples side by side. Tasks are picked in any task table."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from webapp.core import access
from webapp.core.choices import ACTIVE_STATES
from webapp.core.models import DebugSample, Plot
from webapp.core.presenters import read_task

from .forms import COMPARE_VIEWS, CompareQuery, first_error
from .plotting import json_safe

# Plots and samples are shown per (title, series); past this many the page says so.
MAX_KEYS = 40
MISSING = object()


def _parameter_rows(tasks) -> list[dict]:
    """One row per section/name any task has: its value in each task, and whether they differ."""
    values = []
    for task in tasks:
        flat = {}
        for section, params in (read_task(task).hyperparameters or {}).items():
            for name, param in (params or {}).items():
                value = param.get("value", "") if isinstance(param, dict) else param
                flat[(section, name)] = str(value)
        values.append(flat)
    keys = sorted({key for flat in values for key in flat})
    rows = []
    for section, name in keys:
        cells = [flat.get((section, name), MISSING) for flat in values]
        rows.append(
            {
                "section": section,
                "name": name,
                "cells": [
                    {"value": "" if cell is MISSING else cell, "missing": cell is MISSING}
                    for cell in cells
                ],
                "differs": len({repr(cell) for cell in cells}) > 1,
            }
        )
    return rows


def _metric_rows(tasks) -> list[dict]:
    """The last value of every scalar series, per task (Task.last_metrics)."""
    keys = sorted({key for task in tasks for key in (task.last_metrics or {})})
    rows = []
    for key in keys:
        points = [(task.last_metrics or {}).get(key) for task in tasks]
        values = [None if p is None else str(p.get("raw", p.get("value"))) for p in points]
        rows.append(
            {
                "name": key,
                "cells": [{"value": v or "", "missing": v is None} for v in values],
                "differs": len(set(values)) > 1,
            }
        )
    return rows


def _latest_by_key(rows) -> dict:
    """{(title, series): {task_id: row}} keeping each task's latest iteration."""
    found: dict[tuple, dict] = {}
    for row in rows:
        cell = found.setdefault((row.title, row.series), {})
        current = cell.get(row.task_id)
        if current is None or row.iteration >= current.iteration:
            cell[row.task_id] = row
    return found


def _plots(tasks) -> tuple[list[dict], bool]:
    found = _latest_by_key(Plot.objects.filter(task__in=tasks).order_by("title", "series"))
    keys = sorted(found)[:MAX_KEYS]
    groups = []
    for index, key in enumerate(keys):
        cells = []
        for column, task in enumerate(tasks):
            row = found[key].get(task.id)
            figure = None
            if row is not None and isinstance(row.figure, dict):
                layout = dict(row.figure.get("layout") or {})
                layout.setdefault("title", {"text": task.name})
                layout["autosize"] = True
                figure = json_safe({"data": row.figure.get("data") or [], "layout": layout})
            cells.append(
                {
                    "id": f"compare-plot-{index}-{column}",
                    "figure": figure,
                    "iteration": row.iteration if row else None,
                }
            )
        groups.append({"title": key[0], "series": key[1], "cells": cells})
    return groups, len(found) > MAX_KEYS


def _samples(tasks) -> tuple[list[dict], bool]:
    found = _latest_by_key(
        DebugSample.objects.filter(task__in=tasks).order_by("title", "series", "iteration")
    )
    keys = sorted(found)[:MAX_KEYS]
    groups = [
        {
            "title": key[0],
            "series": key[1],
            "cells": [found[key].get(task.id) for task in tasks],
        }
        for key in keys
    ]
    return groups, len(found) > MAX_KEYS


@login_required
@require_GET
def compare(request):
    form = CompareQuery(data=request.GET)
    if not form.is_valid():
        return render(
            request,
            "dashboard/compare.html",
            {"error": first_error(form), "tasks": [], "nav_section": "projects"},
            status=400,
        )
    query = form.validated_data
    found = {
        task.id: task
        for task in access.visible_tasks(request.user)
        .filter(pk__in=query["ids"])
        .select_related("project")
    }
    # Ids the user may not see are left out, as missing ones: nothing tells them apart.
    tasks = [found[task_id] for task_id in query["ids"] if task_id in found]
    if not tasks:
        raise Http404("none of these tasks")
    view = query["view"]
    ids = ",".join(task.id for task in tasks)
    context = {
        "tasks": tasks,
        "ids": ids,
        "view": view,
        "views": [(name, f"?ids={ids}&view={name}") for name in COMPARE_VIEWS],
        "diff_only": query["diff"],
        "nav_section": "projects",
    }
    if view == "parameters":
        context["parameters"] = _parameter_rows(tasks)
        context["metrics"] = _metric_rows(tasks)
    elif view == "scalars":
        names = [task.name for task in tasks]
        sources = []
        for task in tasks:
            # Tasks of one name (clones of one base) are told apart by their id.
            label = task.name if names.count(task.name) == 1 else f"{task.name} {task.id[:6]}"
            sources.append(
                {
                    "label": label,
                    "charts_url": reverse("api:task-results-scalar-charts", kwargs={"pk": task.id}),
                    "since_url": reverse("api:task-results-scalars-since", kwargs={"pk": task.id}),
                    "live": task.status in ACTIVE_STATES,
                }
            )
        context["sources"] = sources
        context["prefetch"] = " ".join(source["charts_url"] for source in sources)
    elif view == "plots":
        context["plot_groups"], context["cut"] = _plots(tasks)
    else:
        context["sample_groups"], context["cut"] = _samples(tasks)
    return render(request, "dashboard/compare.html", context)
