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


def _create(request, form_class, create, template: str, kind: str):
    """The form for a new row; a valid POST creates it and goes to its page."""
    form = form_class(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        row = _save(request, form, lambda values: create(user=request.user, **values))
        if row is not None:
            messages.success(request, f"{kind} “{row.name}” created.")
            return redirect(row)
    return render(request, template, {"form": form, kind.lower(): None})


def _edit(request, row, form_class, edit, kind: str):
    """(the row's form, a redirect once a valid POST saved only what it changed, or None)."""
    form = form_class(request.POST or None, user=request.user, initial=form_class.initial_for(row))
    if request.method == "POST" and form.is_valid():
        saved = _save(
            request, form, lambda values: edit(row, _changes(row, values), user=request.user)
        )
        if saved is not None:
            messages.success(request, f"{kind} saved.")
            return form, redirect(saved)
    return form, None


# The buttons of each kind's pages: verb -> (what it calls, what the message says it did).
ACTIONS = {
    Schedule: {
        "pause": (schedules.pause_schedule, "Paused"),
        "resume": (schedules.resume_schedule, "Resumed"),
        "delete": (schedules.delete_schedule, "Deleted"),
    },
    Trigger: {
        "pause": (triggers.pause_trigger, "Paused"),
        "resume": (triggers.resume_trigger, "Resumed"),
        "delete": (triggers.delete_trigger, "Deleted"),
    },
}
LIST_PAGES = {Schedule: "automation:schedules", Trigger: "automation:triggers"}


def _act(request, model, pk: str, verb: str):
    row = get_object_or_404(_visible(model, request.user), pk=pk)
    if verb not in ACTIONS[model]:
        raise Http404("no such action")
    act, done = ACTIONS[model][verb]
    act(row)
    messages.success(request, f"{done} “{row.name}”.")
    # Back to the list when the row is gone or the button was on it; never to a URL taken
    # from the request.
    if verb == "delete" or request.POST.get("back") == "list":
        return redirect(LIST_PAGES[model])
    return redirect(row)


# ---------------------------------------------------------------- schedules


@login_required
def schedule_list(request):
    rows = _visible(Schedule, request.user).order_by("project__name", "name")
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    entries = [{"schedule": s, "next": schedules.upcoming(s, 1)} for s in page]
    return render(request, "automation/schedules.html", {"entries": entries, "page": page})


@login_required
def schedule_new(request):
    return _create(
        request,
        ScheduleForm,
        schedules.create_schedule,
        "automation/schedule_form.html",
        "Schedule",
    )


@login_required
def schedule_detail(request, schedule_id: str):
    schedule = get_object_or_404(_visible(Schedule, request.user), pk=schedule_id)
    form, done = _edit(request, schedule, ScheduleForm, schedules.edit_schedule, "Schedule")
    if done is not None:
        return done
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
    return _act(request, Schedule, schedule_id, verb)


# ---------------------------------------------------------------- triggers


@login_required
def trigger_list(request):
    rows = _visible(Trigger, request.user).select_related("watch_project")
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "automation/triggers.html", {"triggers": page, "page": page})


@login_required
def trigger_new(request):
    return _create(
        request, TriggerForm, triggers.create_trigger, "automation/trigger_form.html", "Trigger"
    )


@login_required
def trigger_detail(request, trigger_id: str):
    trigger = get_object_or_404(
        _visible(Trigger, request.user).select_related("watch_project"), pk=trigger_id
    )
    form, done = _edit(request, trigger, TriggerForm, triggers.edit_trigger, "Trigger")
    if done is not None:
        return done
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
    return _act(request, Trigger, trigger_id, verb)
