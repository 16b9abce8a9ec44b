"""The dashboard's forms for schedules and triggers: shapes only. Every rule (a cron that
parses, a base task the user may see, a pipeline that has run) is the verbs', whose errors
the views show on the form."""

from django import forms

from webapp.core import access, presenters
from webapp.core.choices import TaskStatus, TaskType
from webapp.core.models import PipelineRun

from .choices import (
    TRIGGER_STATUSES,
    MetricSign,
    Missed,
    Overlap,
    TargetKind,
    TriggerEvent,
    TriggerSource,
)

SEP = "\x1f"
MAX_CHOICES = 500


def _lines(text: str) -> dict:
    """ "Section/name=value" per line -> {"Section/name": "value"}."""
    values = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(f"line {number}: write Section/name=value")
        values[key.strip()] = value.strip()
    return values


def _as_lines(values: dict) -> str:
    return "\n".join(f"{key}={value}" for key, value in (values or {}).items())


def _tags(text: str) -> list[str]:
    return [tag.strip() for tag in (text or "").split(",") if tag.strip()]


def pipeline_choices(user) -> list[tuple[str, str]]:
    """Pipelines the user may see, as (project, name, version) keys, newest first."""
    rows = (
        PipelineRun.objects.filter(controller__in=access.visible_tasks(user).values("pk"))
        .exclude(controller__runtime__has_key="started_by")
        .order_by("-created")
        .values_list("controller__project__name", "controller__name", "controller__runtime")
    )
    seen, choices = set(), []
    for project, name, runtime in rows[:5000]:
        version = str((runtime or {}).get("version") or "")
        for key in (
            ((project, name, ""), (project, name, version)) if version else ((project, name, ""),)
        ):
            if key not in seen:
                seen.add(key)
                label = f"{project} / {name}" + (f" v{key[2]}" if key[2] else " (latest)")
                choices.append((SEP.join(key), label))
    return choices[:MAX_CHOICES]


def base_task_choices(user) -> list[tuple[str, str]]:
    tasks = (
        access.visible_tasks(user)
        .filter(status=TaskStatus.CREATED, archived=False)
        .exclude(type=TaskType.CONTROLLER)
        .select_related("project")
        .order_by("project__name", "name", "-created")
    )
    return [(t.pk, f"{t.project.name} / {t.name} ({t.pk[:8]})") for t in tasks[:MAX_CHOICES]]


class TargetForm(forms.Form):
    name = forms.CharField(max_length=255)
    target_kind = forms.ChoiceField(
        choices=TargetKind.choices, widget=forms.RadioSelect, initial=TargetKind.TASK
    )
    base_task = forms.ChoiceField(required=False, label="Base task to clone")
    queue = forms.CharField(max_length=100, initial="default", required=False)
    task_parameters = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "General/lr=0.1"}),
        label="Task parameters (Section/name=value, one a line)",
    )
    pipeline = forms.ChoiceField(required=False, label="Pipeline")
    pipeline_parameters = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "dataset_url=..."}),
        label="Pipeline parameters (name=value, one a line)",
    )
    tags = forms.CharField(required=False, label="Tags for what it starts (comma separated)")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base_task"].choices = [("", "—"), *base_task_choices(user)]
        self.fields["pipeline"].choices = [("", "—"), *pipeline_choices(user)]

    def clean_task_parameters(self):
        return _lines(self.cleaned_data["task_parameters"])

    def clean_pipeline_parameters(self):
        return _lines(self.cleaned_data["pipeline_parameters"])

    def target_values(self) -> dict:
        data = self.cleaned_data
        values = {"target_kind": data["target_kind"], "tags": _tags(data["tags"])}
        if data["target_kind"] == TargetKind.PIPELINE:
            project, name, version = (data["pipeline"] or SEP * 2).split(SEP)
            values.update(
                pipeline_project=project,
                pipeline_name=name,
                pipeline_version=version,
                pipeline_parameters=data["pipeline_parameters"],
            )
        else:
            values.update(
                base_task=data["base_task"] or None,
                queue=data["queue"] or "default",
                task_parameters=data["task_parameters"],
            )
        return values

    @staticmethod
    def target_initial(row) -> dict:
        return {
            "name": row.name,
            "target_kind": row.target_kind,
            "base_task": row.base_task_id or "",
            "queue": row.queue,
            # Masked like everywhere else; a mask saved back keeps the stored value.
            "task_parameters": _as_lines(presenters.read_overrides(row.task_parameters)),
            "pipeline": SEP.join([row.pipeline_project, row.pipeline_name, row.pipeline_version])
            if row.target_kind == TargetKind.PIPELINE
            else "",
            "pipeline_parameters": _as_lines(presenters.read_overrides(row.pipeline_parameters)),
            "tags": ", ".join(row.tags or []),
        }


class ScheduleForm(TargetForm):
    cron = forms.CharField(
        max_length=100,
        required=False,
        label="Cron (minute hour day month weekday; six fields: seconds first)",
        widget=forms.TextInput(attrs={"placeholder": "30 2 * * *"}),
    )
    interval_seconds = forms.FloatField(required=False, min_value=1, label="Or every N seconds")
    timezone = forms.CharField(max_length=64, initial="UTC", label="Time zone (e.g. Europe/Riga)")
    overlap = forms.ChoiceField(choices=Overlap.choices, initial=Overlap.SKIP)
    missed = forms.ChoiceField(
        choices=Missed.choices, initial=Missed.RUN_ONCE, label="Ticks missed while down"
    )

    def values(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            **self.target_values(),
            "cron": data["cron"],
            "interval_seconds": None if data["cron"] else data["interval_seconds"],
            "timezone": data["timezone"],
            "overlap": data["overlap"],
            "missed": data["missed"],
        }

    @classmethod
    def initial_for(cls, schedule) -> dict:
        return {
            **cls.target_initial(schedule),
            "cron": schedule.cron,
            "interval_seconds": schedule.interval_seconds,
            "timezone": schedule.timezone,
            "overlap": schedule.overlap,
            "missed": schedule.missed,
        }


class TriggerForm(TargetForm):
    source = forms.ChoiceField(choices=TriggerSource.choices, initial=TriggerSource.TASK)
    event = forms.ChoiceField(choices=TriggerEvent.choices, initial=TriggerEvent.STATUS)
    watch_project = forms.ChoiceField(required=False, label="In project")
    name_pattern = forms.CharField(
        max_length=255, required=False, label="Name matches (regular expression)"
    )
    statuses = forms.MultipleChoiceField(
        choices=[(s, s) for s in TRIGGER_STATUSES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Ends with status",
    )
    on_tags = forms.CharField(required=False, label="Gets all of these tags (comma separated)")
    metric_title = forms.CharField(max_length=255, required=False, label="Metric title")
    metric_series = forms.CharField(max_length=255, required=False, label="Metric series")
    threshold = forms.FloatField(required=False)
    sign = forms.ChoiceField(choices=MetricSign.choices, initial=MetricSign.MAX)
    artifact_name = forms.CharField(max_length=255, required=False, label="Artifact name")
    required_tags = forms.CharField(required=False, label="Only with tags (comma separated)")
    single_instance = forms.BooleanField(
        required=False, label="Skip an event while what the last one started still runs"
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        projects = access.visible_projects(user).order_by("name").values_list("name", flat=True)
        self.fields["watch_project"].choices = [
            ("", "any project"),
            *((name, name) for name in projects[:MAX_CHOICES]),
        ]

    def values(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            **self.target_values(),
            "source": data["source"],
            "event": data["event"],
            "watch_project": data["watch_project"] or None,
            "name_pattern": data["name_pattern"],
            "statuses": list(data["statuses"]),
            "on_tags": _tags(data["on_tags"]),
            "metric_title": data["metric_title"],
            "metric_series": data["metric_series"],
            "threshold": data["threshold"],
            "sign": data["sign"],
            "artifact_name": data["artifact_name"],
            "required_tags": _tags(data["required_tags"]),
            "single_instance": data["single_instance"],
        }

    @classmethod
    def initial_for(cls, trigger) -> dict:
        return {
            **cls.target_initial(trigger),
            "source": trigger.source,
            "event": trigger.event,
            "watch_project": trigger.watch_project.name if trigger.watch_project_id else "",
            "name_pattern": trigger.name_pattern,
            "statuses": trigger.statuses,
            "on_tags": ", ".join(trigger.on_tags),
            "metric_title": trigger.metric_title,
            "metric_series": trigger.metric_series,
            "threshold": trigger.threshold,
            "sign": trigger.sign,
            "artifact_name": trigger.artifact_name,
            "required_tags": ", ".join(trigger.required_tags),
            "single_instance": trigger.single_instance,
        }
