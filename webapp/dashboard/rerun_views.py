"""A run's "Rerun from a step" page (pick a step, edit its parameters and those below it,
see the plan, start) and the diff of two runs of a pipeline, aligned by step."""

import json
import secrets as secrets_module

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from pipelines import dag
from pipelines import parameters as flat_parameters
from webapp.core import access, engine, policy, presenters, run_diff, secrets
from webapp.core.choices import PIPELINE_TERMINAL, PipelineDriver
from webapp.core.errors import DomainError, NotFound
from webapp.core.models import Task

from .pipeline_views import visible_runs

FIELD = "edit|"  # form fields: edit|<step>|<Section/name>
VERB = "pipeline.drive"


@login_required
@require_http_methods(["GET", "POST"])
def pipeline_rerun_from(request, run_id: str):
    run = get_object_or_404(visible_runs(request.user), pk=run_id)
    names = [step["name"] for step in run.steps]
    source = request.POST if request.method == "POST" else request.GET
    step = source.get("step") or ""
    context = {
        "run": run,
        "names": names,
        "step": step if step in names else "",
        "nav_section": "pipelines",
        "ended": run.status in PIPELINE_TERMINAL,
        "server_driven": run.driver == PipelineDriver.SERVER,
        "plan": None,
        # One per form shown: a second Start of the same form opens the run the first began.
        "token": request.POST.get("token") or secrets_module.token_hex(16),
    }
    if step and step not in names:
        messages.error(request, f"The run has no step “{step}”.")
    if context["step"]:
        context["forms"] = _step_forms(run, context["step"], request.POST or None)
    if request.method == "POST":
        if not context["step"]:
            return render(request, "dashboard/pipeline_rerun.html", context, status=400)
        allowed = access.permits(
            policy.rule_for(VERB, request.user), request.user, None, run.controller
        )
        if not allowed:
            messages.error(request, f"You may not {policy.verb(VERB).summary} here.")
            return render(request, "dashboard/pipeline_rerun.html", context, status=403)
        dry_run = request.POST.get("action") != "start"
        try:
            answer = engine.rerun_from(
                run.pk,
                user=request.user,
                step=context["step"],
                parameter_override=_edits(context["forms"]),
                dry_run=dry_run,
                token=request.POST.get("token", "")[:64],
            )
        except DomainError as error:
            messages.error(request, error.message)
            return render(request, "dashboard/pipeline_rerun.html", context, status=400)
        if not dry_run:
            messages.success(request, f"Started a new run from “{context['step']}”.")
            return redirect("dashboard:pipeline_run", run_id=answer.pk)
        context["plan"] = answer
    return render(request, "dashboard/pipeline_rerun.html", context)


def _step_forms(run, step: str, posted) -> list:
    """The step and each one below it, with its parameters: the literal values its
    overrides give and its base task's other parameters, editable; those a reference
    fills in shown, not editable."""
    index = dag.index_graph(run.steps)
    below = {step, *dag.descendants(index, step)}
    steps = [s for s in run.steps if s["name"] in below]
    bases = {
        t.pk: t for t in Task.objects.filter(pk__in={s["base_task_id"] for s in steps}).order_by()
    }
    forms = []
    for spec in steps:
        base = bases.get(str(spec["base_task_id"]))
        shown = flat_parameters.flatten(presenters.read_task(base).hyperparameters) if base else {}
        overrides = {
            _full(k): v for k, v in presenters.read_overrides(spec["parameter_override"]).items()
        }
        fields = []
        for name in sorted({*shown, *overrides}):
            value = overrides.get(name, shown.get(name))
            reference = bool(dag.parse_references(value))
            field = f"{FIELD}{spec['name']}|{name}"
            current = _text(value)
            given = posted.get(field) if posted is not None and not reference else None
            fields.append(
                {
                    "name": name,
                    "field": field,
                    "value": current if given is None else given,
                    "default": current,
                    "reference": reference,
                    "changed": given is not None and given != current,
                    "secret": secrets.is_sensitive(name.rsplit("/", 1)[-1]),
                }
            )
        forms.append({"name": spec["name"], "fields": fields, "from": spec["name"] == step})
    return forms


def _full(key) -> str:
    key = str(key)
    return key if "/" in key else f"General/{key}"


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _typed(text: str):
    """What a field's text stands for: a number, boolean or null when it reads as one
    (the step's task keeps the type), else the text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) or value is None else text


def _edits(forms: list) -> dict:
    return {
        form["name"]: {f["name"]: _typed(f["value"]) for f in form["fields"] if f["changed"]}
        for form in forms
        if any(f["changed"] for f in form["fields"])
    }


@login_required
def pipeline_diff(request, run_id: str):
    other = request.GET.get("other", "").strip() or None
    try:
        run, other_run = run_diff.runs_to_compare(run_id, other, request.user)
    except NotFound as error:
        run = get_object_or_404(visible_runs(request.user), pk=run_id)
        context = {"run": run, "error": error.message, "nav_section": "pipelines"}
        return render(request, "dashboard/pipeline_diff.html", context, status=404)
    try:
        result = run_diff.diff(run, other_run)
    except DomainError as error:
        context = {"run": run, "error": error.message, "nav_section": "pipelines"}
        return render(request, "dashboard/pipeline_diff.html", context, status=400)
    context = {"run": run, "diff": result, "nav_section": "pipelines"}
    return render(request, "dashboard/pipeline_diff.html", context)
