from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from webapp.core import access


@login_required
def home(request):
    projects = access.visible_projects(request.user).order_by("name")[:200]
    return render(request, "dashboard/home.html", {"projects": projects})


def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})
