"""Pipelines: the runs of each pipeline with progress, and one run's live DAG."""

import hashlib
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from webapp.core import access, engine
from webapp.core.choices import NODE_TERMINAL, PIPELINE_TERMINAL, PipelineDriver
from webapp.core.errors import DomainError
from webapp.core.models import PipelineRun

RUNS_PER_PIPELINE = 10
PIPELINES_PER_PAGE = 20


def visible_runs(user):
    return PipelineRun.objects.filter(
        controller__in=access.visible_tasks(user).values("pk")
    ).select_related("controller", "controller__project")


def _progress(run) -> dict:
    total = max(len(run.steps or []), 0)
    done = min(getattr(run, "n_done", 0), total)
    return {"done": done, "total": total, "percent": round(100 * done / total) if total else 0}


@login_required
def pipelines(request):
    """Pipelines are named by their controller task's project and name (as in ClearML)."""
    # A fan-out's batches are nodes too, but not steps of the run.
    done = Q(nodes__status__in=NODE_TERMINAL, nodes__map_step="")
    runs = visible_runs(request.user).annotate(n_done=Count("nodes", filter=done))
    q = request.GET.get("q", "").strip()
    if q:
        runs = runs.filter(
            Q(controller__name__icontains=q) | Q(controller__project__name__icontains=q)
        )
    names = (
        runs.values("controller__project__name", "controller__name")
        .annotate(n_runs=Count("pk", distinct=True))
        .order_by("controller__project__name", "controller__name")
    )
    page = Paginator(names, PIPELINES_PER_PAGE).get_page(request.GET.get("page"))
    groups = []
    for entry in page:
        latest = runs.filter(
            controller__project__name=entry["controller__project__name"],
            controller__name=entry["controller__name"],
        ).order_by("-created")[:RUNS_PER_PIPELINE]
        groups.append(
            {
                "project": entry["controller__project__name"],
                "name": entry["controller__name"],
                "count": entry["n_runs"],
                "runs": [{"run": run, "progress": _progress(run)} for run in latest],
            }
        )
    return render(request, "dashboard/pipelines.html", {"groups": groups, "page": page, "q": q})


def run_view(run) -> dict:
    """Everything the run page shows, for the page and for its live feed."""
    view = engine.run_view(run)
    return {"figure": view.figure(), "rows": view.rows(), "progress": view.progress()}


@login_required
def pipeline_run(request, run_id: str):
    run = get_object_or_404(visible_runs(request.user), pk=run_id)
    context = {
        "run": run,
        **run_view(run),
        "can_abort": run.status not in PIPELINE_TERMINAL,
        # Callbacks live in the user's script, and ClearML runs in their controller: only
        # runs the server drove can be run again from here.
        "can_rerun": run.status in PIPELINE_TERMINAL and run.driver == PipelineDriver.SERVER,
        "nav_section": "pipelines",
    }
    return render(request, "dashboard/pipeline_run.html", context)


@login_required
@require_GET
def pipeline_run_state(request, run_id: str):
    """The live feed of the run page: its status, progress, figure and node table."""
    run = get_object_or_404(visible_runs(request.user), pk=run_id)
    data = run_view(run)
    figure_json = json.dumps(data["figure"], sort_keys=True, default=str)
    nodes_html = render_to_string(
        "dashboard/_pipeline_nodes.html", {"rows": data["rows"]}, request=request
    )
    return JsonResponse(
        {
            "status": run.status,
            "label": run.get_status_display(),
            "progress": data["progress"],
            "figure": data["figure"],
            # Lets the page skip redrawing an unchanged figure (it would reset the hover).
            "version": hashlib.sha256(figure_json.encode()).hexdigest()[:16],
            "nodes_html": nodes_html,
            "terminal": run.status in PIPELINE_TERMINAL,
        }
    )


@login_required
@require_POST
def pipeline_run_abort(request, run_id: str):
    run = get_object_or_404(visible_runs(request.user), pk=run_id)
    reason = f"pipeline aborted by {request.user.get_username()}"
    try:
        engine.stop_run(run.pk, reason)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Pipeline run aborted.")
    return redirect("dashboard:pipeline_run", run_id=run.pk)


@login_required
@require_POST
def pipeline_run_rerun(request, run_id: str):
    run = get_object_or_404(visible_runs(request.user), pk=run_id)
    try:
        new_run = engine.rerun(run.pk, user=request.user)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("dashboard:pipeline_run", run_id=run.pk)
    messages.success(request, "Started a new run.")
    return redirect("dashboard:pipeline_run", run_id=new_run.pk)
