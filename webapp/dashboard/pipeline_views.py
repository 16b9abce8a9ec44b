"""Pipelines: the runs of each pipeline with progress, and one run's live DAG."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from webapp.core import access, engine
from webapp.core.choices import PIPELINE_TERMINAL, PipelineDriver
from webapp.core.errors import DomainError
from webapp.core.models import PipelineRun

from . import run_page

RUNS_PER_PIPELINE = 10
PIPELINES_PER_PAGE = 20


def visible_runs(user):
    return PipelineRun.objects.filter(
        controller__in=access.visible_tasks(user).values("pk")
    ).select_related("controller", "controller__project")


@login_required
def pipelines(request):
    """Pipelines are named by their controller task's project and name (as in ClearML)."""
    runs = run_page.with_progress(visible_runs(request.user))
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
                "runs": [{"run": run, "progress": run_page.run_summary(run)} for run in latest],
            }
        )
    return render(request, "dashboard/pipelines.html", {"groups": groups, "page": page, "q": q})


@login_required
def pipeline_run(request, run_id: str):
    run = get_object_or_404(visible_runs(request.user), pk=run_id)
    page = run_page.build_run_page(run)
    context = {
        "run": run,
        "page": page,
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
    """The live feed of the run page: its status, progress, figures and node table."""
    run = get_object_or_404(visible_runs(request.user), pk=run_id)
    page = run_page.build_run_page(run)
    context = {"run": run, "page": page, "rows": page.rows}
    fragments = {
        f"{part}_html": render_to_string(f"dashboard/{template}", context, request=request)
        for part, template in (
            ("nodes", "_pipeline_nodes.html"),
            ("progress", "_run_progress.html"),
            ("times", "_run_times.html"),
        )
    }
    return JsonResponse(run_page.state_payload(page, **fragments))


@login_required
@require_GET
def pipeline_run_step(request, run_id: str):
    """The step panel beside the DAG (an HTML fragment), for the step named in `?name=`."""
    run = get_object_or_404(visible_runs(request.user), pk=run_id)
    panel = run_page.step_panel(run, request.GET.get("name", "")[:255])
    if panel is None:
        raise Http404("no such step in this run")
    return render(request, "dashboard/_step_panel.html", {"run": run, "panel": panel})


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
