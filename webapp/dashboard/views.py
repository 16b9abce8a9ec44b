"""Read-only pages: projects, a project's tasks, the task page frame and its JSON feeds.

Every lookup goes through webapp.core.access, so what a user may not see is a 404.
"""

from pathlib import Path

import plotly
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Max, Q
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.cache import cache_control
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

from webapp.core import access, events
from webapp.core.choices import ACTIVE_STATES, TaskStatus, TaskType
from webapp.core.models import DebugSample, LogLine, PipelineNode, Queue
from webapp.core.storage import artifact_storage

from . import registry
from .forms import ConsoleLinesQuery, ConsoleSearchQuery
from .permissions import task_actions
from .rendering import render_tab, tab_badge

PAGE_SIZE = 50
CONSOLE_BATCH = 1000
CONSOLE_MATCHES = 500
DOWNLOAD_PAGE = 5000
TASK_SORTS = {
    "name": "name",
    "-name": "-name",
    "type": "type",
    "-type": "-type",
    "status": "status",
    "-status": "-status",
    "updated": "last_update",
    "-updated": "-last_update",
    "created": "created",
    "-created": "-created",
}
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def visible_task(request, task_id: str):
    tasks = access.visible_tasks(request.user).select_related(
        "project", "queue", "parent", "created_by"
    )
    return get_object_or_404(tasks, pk=task_id)


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})


@login_required
def home(request):
    return redirect("dashboard:projects")


@login_required
def projects(request):
    counts = {
        f"n_{status}": Count("tasks", filter=Q(tasks__status=status, tasks__archived=False))
        for status in (TaskStatus.IN_PROGRESS, TaskStatus.QUEUED, TaskStatus.FAILED)
    }
    rows = (
        access.visible_projects(request.user)
        .annotate(
            n_tasks=Count("tasks", filter=Q(tasks__archived=False)),
            last_update=Max("tasks__last_update"),
            **counts,
        )
        .order_by("name")
    )
    q = request.GET.get("q", "").strip()
    if q:
        rows = rows.filter(name__icontains=q)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "dashboard/projects.html", {"page": page, "q": q})


@login_required
def project_tasks(request, project_id: str):
    project = get_object_or_404(access.visible_projects(request.user), pk=project_id)
    tasks = access.visible_tasks(request.user).filter(project=project)
    params = request.GET
    show_archived = params.get("archived") == "1"
    tasks = tasks.filter(archived=show_archived)
    statuses = [s for s in params.getlist("status") if s in TaskStatus.values]
    types = [t for t in params.getlist("type") if t in TaskType.values]
    if statuses:
        tasks = tasks.filter(status__in=statuses)
    if types:
        tasks = tasks.filter(type__in=types)
    q = params.get("q", "").strip()
    if q:
        # Tags are a JSON list; matching its text keeps this portable to SQLite.
        tasks = tasks.filter(Q(name__icontains=q) | Q(id__startswith=q) | Q(tags__icontains=q))
    sort = params.get("sort", "-updated")
    if sort not in TASK_SORTS:
        sort = "-updated"
    tasks = tasks.order_by(TASK_SORTS[sort], "-created")
    page = Paginator(tasks, PAGE_SIZE).get_page(params.get("page"))
    context = {
        "project": project,
        "page": page,
        "q": q,
        "sort": sort,
        "statuses": statuses,
        "types": types,
        "show_archived": show_archived,
        "status_choices": TaskStatus.choices,
        "type_choices": TaskType.choices,
        "nav_section": "projects",
    }
    return render(request, "dashboard/project_tasks.html", context)


@login_required
def task_detail(request, task_id: str, slug: str = ""):
    task = visible_task(request, task_id)
    tabs = registry.tabs_for(task)
    if not tabs:
        raise Http404("no tabs are installed")
    if slug:
        active = next((tab for tab in tabs if tab.slug == slug), None)
        if active is None:
            raise Http404(f"no tab {slug!r} on this task")
    else:
        active = tabs[0]
    strip = [{"tab": tab, "badge": tab_badge(tab, task)} for tab in tabs]
    node = PipelineNode.objects.filter(task=task).select_related("run").first()
    context = {
        "task": task,
        "tabs": strip,
        "active_tab": active,
        "tab_html": render_tab(request, task, active),
        "actions": task_actions(task),
        "queues": Queue.objects.order_by("name"),
        "projects": access.visible_projects(request.user).order_by("name")[:500],
        "pipeline_run": getattr(task, "pipeline_run", None),
        "pipeline_node": node,
        "nav_section": "projects",
    }
    return render(request, "dashboard/task_detail.html", context)


@login_required
@require_GET
def task_status(request, task_id: str):
    task = visible_task(request, task_id)
    return JsonResponse(_status_payload(task))


def _status_payload(task) -> dict:
    return {
        "id": task.id,
        "status": task.status,
        "label": task.get_status_display(),
        "reason": task.status_reason,
        "last_update": task.last_update.isoformat(),
        "active": task.status in ACTIVE_STATES,
    }


@login_required
@require_GET
def tasks_status(request):
    """Statuses of the listed tasks, for live pills in a table."""
    ids = [i for i in request.GET.get("ids", "").split(",") if i][:200]
    tasks = access.visible_tasks(request.user).filter(pk__in=ids)
    return JsonResponse({"tasks": {task.id: _status_payload(task) for task in tasks}})


def _query(request, form_class) -> dict | None:
    form = form_class(data=request.GET)
    return form.validated_data if form.is_valid() else None


def _bad_query(form_class, request) -> JsonResponse:
    form = form_class(data=request.GET)
    form.is_valid()
    return JsonResponse({"error": "invalid", "fields": form.errors}, status=400)


@login_required
@require_GET
def console_lines(request, task_id: str):
    """Console lines after `since` (a seq), oldest first, at most CONSOLE_BATCH of them; or,
    with `before`, the CONSOLE_BATCH lines just before that seq, still oldest first."""
    task = visible_task(request, task_id)
    query = _query(request, ConsoleLinesQuery)
    if query is None:
        return _bad_query(ConsoleLinesQuery, request)
    fields = ("seq", "stream", "text")
    if "before" in query:
        earlier = LogLine.objects.filter(task=task, seq__lt=query["before"]).order_by("-seq")
        lines = list(earlier.values(*fields)[:CONSOLE_BATCH])[::-1]
        return JsonResponse(
            {
                "lines": lines,
                "first": lines[0]["seq"] if lines else query["before"],
                "more": bool(lines) and earlier.filter(seq__lt=lines[0]["seq"]).exists(),
            }
        )
    since = query["since"]
    lines = list(
        LogLine.objects.filter(task=task, seq__gt=since)
        .order_by("seq")
        .values(*fields)[:CONSOLE_BATCH]
    )
    return JsonResponse(
        {
            "lines": lines,
            "next": lines[-1]["seq"] if lines else since,
            "more": len(lines) == CONSOLE_BATCH,
            "status": _status_payload(task),
        }
    )


@login_required
@require_GET
def console_search(request, task_id: str):
    """Lines of the whole console containing `q` (any case), oldest first, at most
    CONSOLE_MATCHES of them."""
    task = visible_task(request, task_id)
    query = _query(request, ConsoleSearchQuery)
    if query is None:
        return _bad_query(ConsoleSearchQuery, request)
    matches = list(
        LogLine.objects.filter(task=task, text__icontains=query["q"])
        .order_by("seq")
        .values("seq", "stream", "text")[: CONSOLE_MATCHES + 1]
    )
    return JsonResponse(
        {"lines": matches[:CONSOLE_MATCHES], "more": len(matches) > CONSOLE_MATCHES}
    )


@login_required
@require_GET
def console_download(request, task_id: str):
    """The whole console as a text file, streamed in pages of the (task, seq) index."""
    task = visible_task(request, task_id)

    def pages():
        after = -1
        while True:
            rows = list(
                LogLine.objects.filter(task=task, seq__gt=after)
                .order_by("seq")
                .values_list("seq", "text")[:DOWNLOAD_PAGE]
            )
            if not rows:
                return
            after = rows[-1][0]
            yield "".join(text if text.endswith("\n") else text + "\n" for _, text in rows)

    response = StreamingHttpResponse(pages(), content_type="text/plain; charset=utf-8")
    name = slugify(task.name) or "task"
    response["Content-Disposition"] = f'attachment; filename="{name}-{task.id[:8]}-console.txt"'
    return response


@login_required
@require_GET
@xframe_options_sameorigin  # the Debug samples tab frames HTML samples (sandboxed)
def debug_sample_file(request, task_id: str, sample_id: int):
    task = visible_task(request, task_id)
    sample = get_object_or_404(DebugSample, task=task, pk=sample_id)
    if not sample.storage_key:
        raise Http404("this sample is kept as its URL, not stored here")
    try:
        handle = artifact_storage().open(sample.storage_key, "rb")
    except (FileNotFoundError, OSError) as error:
        raise Http404("the sample's file is missing from storage") from error
    # Raster images, audio and video as they are; SVG and HTML with no origin of their own.
    content_type, headers = events.serving(sample.content_type)
    response = FileResponse(handle, content_type=content_type)
    for name, value in headers.items():
        response[name] = value
    return response


@require_GET
@cache_control(public=True, max_age=31536000, immutable=True)
def plotly_js(request, version: str):
    """plotly.min.js straight from the installed plotly package: no copy, no CDN.

    The URL carries the version, so browsers may cache it for good.
    """
    if version != plotly.__version__:
        return redirect(reverse("dashboard:plotly", kwargs={"version": plotly.__version__}))
    return FileResponse(PLOTLY_JS.open("rb"), content_type="text/javascript")
