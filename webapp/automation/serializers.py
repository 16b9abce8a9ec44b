"""Request and response shapes of /api/v1/schedules/ and /api/v1/triggers/."""

from rest_framework import serializers

from webapp.core import presenters

from . import schedules, targets
from .choices import (
    TRIGGER_STATUSES,
    MetricSign,
    Missed,
    Overlap,
    TargetKind,
    TriggerEvent,
    TriggerSource,
)
from .models import Schedule, ScheduleFiring, Trigger, TriggerFiring

TARGET_OUT = list(targets.TARGET_FIELDS)


class TargetInputSerializer(serializers.Serializer):
    """What a schedule or trigger starts; only what the caller sends is changed."""

    name = serializers.CharField(max_length=255)
    target_kind = serializers.ChoiceField(choices=TargetKind.choices, required=False)
    base_task = serializers.CharField(max_length=32, required=False, allow_null=True)
    queue = serializers.CharField(max_length=100, required=False)
    task_parameters = serializers.DictField(required=False)
    time_limit = serializers.FloatField(min_value=0.001, required=False, allow_null=True)
    target_project = serializers.CharField(
        max_length=255, required=False, allow_blank=True, allow_null=True
    )
    pipeline_project = serializers.CharField(max_length=255, required=False, allow_blank=True)
    pipeline_name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    pipeline_version = serializers.CharField(max_length=100, required=False, allow_blank=True)
    pipeline_parameters = serializers.DictField(required=False)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=50
    )
    paused = serializers.BooleanField(required=False)


class ScheduleInputSerializer(TargetInputSerializer):
    cron = serializers.CharField(max_length=100, required=False, allow_blank=True)
    interval_seconds = serializers.FloatField(required=False, allow_null=True)
    timezone = serializers.CharField(max_length=64, required=False)
    overlap = serializers.ChoiceField(choices=Overlap.choices, required=False)
    missed = serializers.ChoiceField(choices=Missed.choices, required=False)


class TriggerInputSerializer(TargetInputSerializer):
    source = serializers.ChoiceField(choices=TriggerSource.choices, required=False)
    event = serializers.ChoiceField(choices=TriggerEvent.choices)
    watch_project = serializers.CharField(
        max_length=255, required=False, allow_blank=True, allow_null=True
    )
    name_pattern = serializers.CharField(max_length=255, required=False, allow_blank=True)
    required_tags = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=50
    )
    statuses = serializers.ListField(
        child=serializers.ChoiceField(choices=list(TRIGGER_STATUSES)), required=False
    )
    on_tags = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, max_length=50
    )
    metric_title = serializers.CharField(max_length=255, required=False, allow_blank=True)
    metric_series = serializers.CharField(max_length=255, required=False, allow_blank=True)
    threshold = serializers.FloatField(required=False, allow_null=True)
    sign = serializers.ChoiceField(choices=MetricSign.choices, required=False)
    artifact_name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    exclude_dev = serializers.BooleanField(required=False)
    single_instance = serializers.BooleanField(required=False)


class _Owned(serializers.ModelSerializer):
    project = serializers.CharField(source="project.name", read_only=True)
    target_project = serializers.CharField(
        source="target_project.name", default=None, read_only=True
    )
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    target = serializers.CharField(source="target_label", read_only=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # Parameter values may carry credentials, masked as everywhere else.
        for field in ("task_parameters", "pipeline_parameters"):
            data[field] = presenters.read_overrides(data.get(field) or {})
        return data


class ScheduleSerializer(_Owned):
    upcoming = serializers.SerializerMethodField()
    when = serializers.CharField(source="when_label", read_only=True)

    class Meta:
        model = Schedule
        fields = [
            "id",
            "name",
            "project",
            "created_by",
            "target",
            *TARGET_OUT,
            "cron",
            "interval_seconds",
            "timezone",
            "when",
            "overlap",
            "missed",
            "paused",
            "next_tick",
            "upcoming",
            "created",
            "updated",
        ]
        read_only_fields = fields

    def get_upcoming(self, schedule) -> list[str]:
        return [tick.isoformat() for tick in schedules.upcoming(schedule)]


class TriggerSerializer(_Owned):
    watch_project = serializers.CharField(source="watch_project.name", default=None, read_only=True)
    when = serializers.CharField(source="event_label", read_only=True)

    class Meta:
        model = Trigger
        fields = [
            "id",
            "name",
            "project",
            "created_by",
            "target",
            *TARGET_OUT,
            "source",
            "event",
            "when",
            "watch_project",
            "name_pattern",
            "required_tags",
            "statuses",
            "on_tags",
            "metric_title",
            "metric_series",
            "threshold",
            "sign",
            "artifact_name",
            "exclude_dev",
            "single_instance",
            "paused",
            "created",
            "updated",
        ]
        read_only_fields = fields


class ScheduleFiringSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScheduleFiring
        fields = ["id", "tick", "state", "reason", "task", "run", "created", "launched"]
        read_only_fields = fields


class TriggerFiringSerializer(serializers.ModelSerializer):
    class Meta:
        model = TriggerFiring
        fields = [
            "id",
            "event_key",
            "source_task",
            "detail",
            "state",
            "reason",
            "task",
            "run",
            "created",
            "launched",
        ]
        read_only_fields = fields
