"""Models: every model the user may see, newest first, with its task and download link."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import render

from webapp.core import access

MODELS_PER_PAGE = 50


@login_required
def models(request):
    rows = access.visible_models(request.user).select_related("project", "task")
    q = request.GET.get("q", "").strip()
    if q:
        rows = rows.filter(
            Q(name__icontains=q) | Q(project__name__icontains=q) | Q(framework__icontains=q)
        )
    page = Paginator(rows.order_by("-created"), MODELS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "dashboard/models.html", {"page": page, "models": page, "q": q})
