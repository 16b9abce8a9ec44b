"""Dashboard pages for schedules and triggers: lists, create and edit forms, each one's
definition and history, and the pause, resume and delete buttons (POST, CSRF-checked).

Rows come from the projects access.py lets the user see; anything else is a 404.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from webapp.core import access, presenters
from webapp.core.errors import DomainError

from . import schedules, triggers
from .forms import ScheduleForm, TriggerForm
from .models import Schedule, Trigger

FIRINGS_PER_PAGE = 25
ROWS_PER_PAGE = 50


def _visible(model, user):
    return model.objects.filter(
        project__in=access.visible_projects(user).values("pk")
    ).select_related("project", "base_task", "created_by")


def _changes(row, values: dict) -> dict:
    """Only what the form changed: an unchanged timing keeps its ticks where they are."""
    changes = {}
    for key, value in values.items():
        current = getattr(row, key, None)
        current = getattr(current, "pk", current) if key == "base_task" else current
        current = getattr(current, "name", current) if key == "watch_project" else current
        if current != value:
            changes[key] = value
    return changes


def _parameters(row) -> dict:
    """Parameter values as every page shows them: credentials masked."""
    return {
        "task_parameters": presenters.read_overrides(row.task_parameters or {}),
        "pipeline_parameters": presenters.read_overrides(row.pipeline_parameters or {}),
    }


def _save(request, form, save, row=None):
    """Run the verb; a refusal is shown on the form, naming the field when it can."""
    try:
        return save(form.values())
    except DomainError as error:
        field = error.details.get("field")
        form.add_error(field if field in form.fields else None, error.message)
        return None


# ---------------------------------------------------------------- schedules


@login_required
def schedule_list(request):
    rows = _visible(Schedule, request.user).order_by("project__name", "name")
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    entries = [{"schedule": s, "next": schedules.upcoming(s, 1)} for s in page]
    return render(request, "automation/schedules.html", {"entries": entries, "page": page})


@login_required
def schedule_new(request):
    form = ScheduleForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        schedule = _save(
            request, form, lambda values: schedules.create_schedule(user=request.user, **values)
        )
        if schedule is not None:
            messages.success(request, f"Schedule “{schedule.name}” created.")
            return redirect(schedule)
    return render(request, "automation/schedule_form.html", {"form": form, "schedule": None})


@login_required
def schedule_detail(request, schedule_id: str):
    schedule = get_object_or_404(_visible(Schedule, request.user), pk=schedule_id)
    form = ScheduleForm(
        request.POST or None, user=request.user, initial=ScheduleForm.initial_for(schedule)
    )
    if request.method == "POST" and form.is_valid():
        saved = _save(
            request,
            form,
            lambda values: schedules.edit_schedule(
                schedule, _changes(schedule, values), user=request.user
            ),
        )
        if saved is not None:
            messages.success(request, "Schedule saved.")
            return redirect(saved)
    page = Paginator(schedule.firings.select_related("task", "run"), FIRINGS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "schedule": schedule,
        **_parameters(schedule),
        "upcoming": schedules.upcoming(schedule),
        "page": page,
        "form": form,
        "nav_section": "schedules",
    }
    return render(request, "automation/schedule_detail.html", context)


@login_required
@require_POST
def schedule_action(request, schedule_id: str, verb: str):
    schedule = get_object_or_404(_visible(Schedule, request.user), pk=schedule_id)
    if verb == "pause":
        schedules.pause_schedule(schedule)
        messages.success(request, f"Paused “{schedule.name}”.")
    elif verb == "resume":
        schedules.resume_schedule(schedule)
        messages.success(request, f"Resumed “{schedule.name}”.")
    elif verb == "delete":
        schedules.delete_schedule(schedule)
        messages.success(request, f"Deleted “{schedule.name}”.")
        return redirect("automation:schedules")
    else:
        raise Http404("no such action")
    # Back to the list when the button was on it; never to a URL taken from the request.
    if request.POST.get("back") == "list":
        return redirect("automation:schedules")
    return redirect(schedule)


# ---------------------------------------------------------------- triggers


@login_required
def trigger_list(request):
    rows = _visible(Trigger, request.user).select_related("watch_project")
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "automation/triggers.html", {"triggers": page, "page": page})


@login_required
def trigger_new(request):
    form = TriggerForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        trigger = _save(
            request, form, lambda values: triggers.create_trigger(user=request.user, **values)
        )
        if trigger is not None:
            messages.success(request, f"Trigger “{trigger.name}” created.")
            return redirect(trigger)
    return render(request, "automation/trigger_form.html", {"form": form, "trigger": None})


@login_required
def trigger_detail(request, trigger_id: str):
    trigger = get_object_or_404(
        _visible(Trigger, request.user).select_related("watch_project"), pk=trigger_id
    )
    form = TriggerForm(
        request.POST or None, user=request.user, initial=TriggerForm.initial_for(trigger)
    )
    if request.method == "POST" and form.is_valid():
        saved = _save(
            request,
            form,
            lambda values: triggers.edit_trigger(
                trigger, _changes(trigger, values), user=request.user
            ),
        )
        if saved is not None:
            messages.success(request, "Trigger saved.")
            return redirect(saved)
    page = Paginator(
        trigger.firings.select_related("task", "run", "source_task"), FIRINGS_PER_PAGE
    ).get_page(request.GET.get("page"))
    context = {
        "trigger": trigger,
        **_parameters(trigger),
        "page": page,
        "form": form,
        "nav_section": "triggers",
    }
    return render(request, "automation/trigger_detail.html", context)


@login_required
@require_POST
def trigger_action(request, trigger_id: str, verb: str):
    trigger = get_object_or_404(_visible(Trigger, request.user), pk=trigger_id)
    if verb == "pause":
        triggers.pause_trigger(trigger)
        messages.success(request, f"Paused “{trigger.name}”.")
    elif verb == "resume":
        triggers.resume_trigger(trigger)
        messages.success(request, f"Resumed “{trigger.name}”.")
    elif verb == "delete":
        triggers.delete_trigger(trigger)
        messages.success(request, f"Deleted “{trigger.name}”.")
        return redirect("automation:triggers")
    else:
        raise Http404("no such action")
    # Back to the list when the button was on it; never to a URL taken from the request.
    if request.POST.get("back") == "list":
        return redirect("automation:triggers")
    return redirect(trigger)
