"""Orchestration pages (queues, workers) and the user's API keys."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from webapp.core import access, keys, services
from webapp.core.choices import ApiKeyKind
from webapp.core.errors import DomainError
from webapp.core.models import ApiKey, Queue, QueueEntry, Worker

from .views import visible_task

NEW_SECRET_SESSION_KEY = "dashboard-new-api-key"  # noqa: S105 - a session key name


def alive_since():
    # The same rule as the API's worker list: silent for longer than a lease is gone.
    return timezone.now() - timedelta(seconds=max(settings.TASK_LEASE_SECONDS, 15))


@login_required
def queues(request):
    visible = access.visible_tasks(request.user).values("pk")
    entries = (
        QueueEntry.objects.filter(task__in=visible)
        .select_related("task", "task__project", "queue")
        .order_by("queue__name", "position", "added")
    )
    by_queue: dict[int, list] = {}
    for entry in entries:
        by_queue.setdefault(entry.queue_id, []).append(entry)
    alive = Worker.objects.filter(last_seen__gte=alive_since())
    workers_by_queue: dict[str, list[str]] = {}
    for worker in alive:
        for name in worker.queues or []:
            workers_by_queue.setdefault(name, []).append(worker.name)
    rows = [
        {
            "queue": queue,
            "entries": by_queue.get(queue.pk, []),
            "hidden": queue.length - len(by_queue.get(queue.pk, [])),
            "workers": workers_by_queue.get(queue.name, []),
        }
        for queue in Queue.objects.annotate(length=Count("entries")).order_by("name")
    ]
    return render(request, "dashboard/queues.html", {"rows": rows})


@login_required
@require_POST
def queue_move(request, task_id: str, direction: str):
    task = visible_task(request, task_id)
    try:
        if direction == "remove":
            services.dequeue_task(task)
            messages.success(request, f"Removed “{task.name}” from its queue.")
        else:
            services.move_queue_entry(task, direction)
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("dashboard:queues")


@login_required
def workers(request):
    since = alive_since()
    visible = set(
        access.visible_tasks(request.user)
        .filter(pk__in=Worker.objects.values("current_task"))
        .values_list("pk", flat=True)
    )
    rows = [
        {
            "worker": worker,
            "alive": worker.last_seen >= since,
            "task": worker.current_task if worker.current_task_id in visible else None,
            "hidden_task": bool(worker.current_task_id) and worker.current_task_id not in visible,
        }
        for worker in Worker.objects.select_related("current_task").order_by("name")
    ]
    return render(request, "dashboard/workers.html", {"rows": rows})


@login_required
def api_keys(request):
    if request.method == "POST":
        name = request.POST.get("name", "").strip()[:100] or "dashboard"
        key, secret = keys.create_api_key(request.user, kind=ApiKeyKind.USER, name=name)
        # Shown once after the redirect, then gone: reloading the page cannot show it again.
        request.session[NEW_SECRET_SESSION_KEY] = {"prefix": key.prefix, "secret": secret}
        return redirect("dashboard:keys")
    new_key = request.session.pop(NEW_SECRET_SESSION_KEY, None)
    rows = ApiKey.objects.filter(user=request.user, kind=ApiKeyKind.USER).order_by("-created")
    context = {"keys": rows, "new_key": new_key, "api_url": request.build_absolute_uri("/")}
    return render(request, "dashboard/keys.html", context)


@login_required
@require_POST
def api_key_revoke(request, prefix: str):
    key = get_object_or_404(ApiKey, user=request.user, kind=ApiKeyKind.USER, prefix=prefix)
    keys.revoke_api_key(key)
    messages.success(request, f"Revoked key {key.prefix}.")
    return redirect("dashboard:keys")
