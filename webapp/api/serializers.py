"""Request and response shapes. Validation of domain rules stays in services."""

import copy
import math

from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers

from pipelines import fanout
from webapp.core import limits, presenters
from webapp.core.choices import TaskType
from webapp.core.models import (
    Artifact,
    LogLine,
    ModelInput,
    Project,
    Queue,
    Task,
    Team,
    TrainedModel,
    Worker,
)


class FiniteFloatField(serializers.FloatField):
    """A float that is a number: NaN and infinities ("inf", 1e999) are refused."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return value


class ConsoleTextField(serializers.CharField):
    """Console text as a step printed it: NUL characters are replaced when stored, not
    refused (a step printing binary output must not lose its console)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)
        ]


def _tags(**kwargs):
    return serializers.ListField(
        child=serializers.CharField(max_length=limits.TAG_MAX),
        max_length=limits.TAGS_MAX,
        **kwargs,
    )


def _attempt():
    return serializers.IntegerField(min_value=1, max_value=limits.INT32_MAX)


def read_task(request, task):
    """`task` as the caller sees it: secret values masked but for its own step's key."""
    return presenters.read_task(task, key=getattr(request, "auth", None))


def masked_task_fields(data: dict, task, request) -> dict:
    """Sensitive parameter values and credentials in the status message, masked."""
    reading = read_task(request, task)
    for field in ("hyperparameters", "configuration", "status_message"):
        if field in data:
            data[field] = getattr(reading, field)
    return data


class ProjectSerializer(serializers.ModelSerializer):
    task_count = serializers.IntegerField(read_only=True, required=False)
    # Write: a team id (one of the caller's teams); omitted = the caller's only team, if one.
    team = serializers.CharField(required=False, allow_null=True, max_length=32)
    team_name = serializers.CharField(source="team.name", read_only=True, default=None)

    class Meta:
        model = Project
        fields = ["id", "name", "description", "created", "task_count", "team", "team_name"]
        read_only_fields = ["id", "created", "task_count", "team_name"]
        extra_kwargs = {"description": {"max_length": limits.DESCRIPTION_MAX}}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["team"] = instance.team_id
        return data


class ProjectListQuerySerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=limits.NAME_MAX)


class TeamSerializer(serializers.ModelSerializer):
    members = serializers.SlugRelatedField(
        many=True, slug_field="username", read_only=True, help_text="usernames"
    )

    class Meta:
        model = Team
        fields = ["id", "name", "members", "created"]
        read_only_fields = ["id", "members", "created"]


class TeamCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=limits.TEAM_NAME_MAX)
    members = serializers.ListField(
        child=serializers.CharField(max_length=150), required=False, default=list, max_length=1000
    )


class TaskSerializer(serializers.ModelSerializer):
    project_name = serializers.CharField(source="project.name", read_only=True)
    queue_name = serializers.CharField(source="queue.name", read_only=True, default=None)

    class Meta:
        model = Task
        fields = [
            "id",
            "project",
            "project_name",
            "name",
            "type",
            "status",
            "status_reason",
            "status_message",
            "parent",
            "tags",
            "system_tags",
            "comment",
            "script",
            "hyperparameters",
            "configuration",
            "runtime",
            "last_metrics",
            "queue_name",
            "worker",
            "attempt",
            "max_attempts",
            "time_limit",
            "last_heartbeat",
            "archived",
            "created",
            "started",
            "completed",
            "last_update",
            "resource_cpu_seconds",
            "resource_peak_rss_bytes",
            "resource_wall_seconds",
            "resource_gpu_seconds",
        ]
        read_only_fields = fields

    # Built from the model once per class: see get_fields.
    _field_templates: dict = {}

    def get_fields(self):
        """ModelSerializer introspects the model for every instance, which was most of the
        cost of rendering a task (every claim and enqueue answers with one). The fields
        depend on the class alone, so each instance binds shallow copies of a set built
        once; binding sets attributes on the copy, never on the shared template."""
        templates = self._field_templates.get(type(self))
        if templates is None:
            templates = self._field_templates.setdefault(type(self), super().get_fields())
        return {name: copy.copy(field) for name, field in templates.items()}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        return masked_task_fields(data, instance, self.context.get("request"))


class TaskListSerializer(TaskSerializer):
    """The list leaves out the heavy fields (script text, parameters)."""

    class Meta(TaskSerializer.Meta):
        fields = [
            f
            for f in TaskSerializer.Meta.fields
            if f not in ("script", "hyperparameters", "configuration", "runtime")
        ]
        read_only_fields = fields


class TaskCreateSerializer(serializers.Serializer):
    project_name = serializers.CharField(max_length=limits.NAME_MAX)
    name = serializers.CharField(max_length=limits.NAME_MAX)
    type = serializers.ChoiceField(choices=TaskType.choices, default=TaskType.TRAINING)
    script = serializers.DictField(required=False, default=dict)
    hyperparameters = serializers.DictField(required=False, default=dict)
    configuration = serializers.DictField(required=False, default=dict)
    tags = _tags(required=False, default=list)
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=limits.COMMENT_MAX
    )
    parent = serializers.CharField(required=False, allow_null=True, default=None, max_length=32)
    start_running = serializers.BooleanField(required=False, default=False)


class TaskEditSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=limits.NAME_MAX, required=False)
    type = serializers.ChoiceField(choices=TaskType.choices, required=False)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=limits.COMMENT_MAX)
    script = serializers.DictField(required=False)
    hyperparameters = serializers.DictField(required=False)
    configuration = serializers.DictField(required=False)
    runtime = serializers.DictField(required=False)
    tags = _tags(required=False)
    max_attempts = serializers.IntegerField(min_value=1, max_value=100, required=False)
    time_limit = FiniteFloatField(
        min_value=0.001, max_value=limits.TIME_LIMIT_MAX, required=False, allow_null=True
    )


class TaskListQuerySerializer(serializers.Serializer):
    """The list's filters (query parameters)."""

    project = serializers.CharField(required=False, max_length=32)
    project_name = serializers.CharField(required=False, max_length=limits.NAME_MAX)
    name = serializers.CharField(required=False, max_length=limits.NAME_MAX)
    search = serializers.CharField(required=False, max_length=limits.NAME_MAX)
    status = serializers.CharField(required=False, max_length=200, help_text="comma-separated")
    type = serializers.CharField(required=False, max_length=200, help_text="comma-separated")
    parent = serializers.CharField(required=False, max_length=32)
    tag = serializers.CharField(required=False, max_length=limits.TAG_MAX)
    archived = serializers.CharField(required=False, max_length=8)
    ordering = serializers.CharField(required=False, max_length=32)


class ConsoleQuerySerializer(serializers.Serializer):
    since = serializers.IntegerField(
        required=False, default=-1, min_value=-1, max_value=limits.INT64_MAX
    )
    limit = serializers.IntegerField(required=False, default=1000, min_value=1, max_value=10_000)


class ScalarsQuerySerializer(serializers.Serializer):
    title = serializers.CharField(required=False, max_length=limits.NAME_MAX)
    max_points = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=1_000_000
    )


class ParametersSerializer(serializers.Serializer):
    values = serializers.DictField()
    replace = serializers.BooleanField(required=False, default=False)


class StatusChangeSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    message = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=limits.STATUS_MESSAGE_MAX
    )


RETURNS_MAX = 100  # a function's named return values


class MapItemReportSerializer(serializers.Serializer):
    """One item of a fan-out as its task ran it: its status and each return value, inline
    (plain JSON) or as the URL of an artifact its task uploaded."""

    index = serializers.IntegerField(min_value=0, max_value=fanout.MAP_ITEMS_MAX - 1)
    status = serializers.ChoiceField(choices=["completed", "failed"])
    values = serializers.DictField(required=False, default=dict)
    artifacts = serializers.DictField(
        child=serializers.CharField(max_length=2000), required=False, default=dict
    )
    message = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=limits.STATUS_MESSAGE_MAX
    )
    started = FiniteFloatField(required=False, allow_null=True, default=None)
    ended = FiniteFloatField(required=False, allow_null=True, default=None)

    def validate_values(self, values):
        if len(values) > RETURNS_MAX:
            raise serializers.ValidationError(f"at most {RETURNS_MAX} return values")
        return limits.json_object("values", values, fanout.ITEM_VALUES_MAX_CHARS)

    def validate_artifacts(self, artifacts):
        if len(artifacts) > RETURNS_MAX:
            raise serializers.ValidationError(f"at most {RETURNS_MAX} return values")
        return artifacts


class MapItemsReportSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=MapItemReportSerializer(), min_length=1, max_length=fanout.ITEMS_PER_TASK_MAX
    )


class MapItemsRecordedSerializer(serializers.Serializer):
    recorded = serializers.IntegerField()


class CloneSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=limits.NAME_MAX, required=False)
    project_name = serializers.CharField(max_length=limits.NAME_MAX, required=False)
    parent = serializers.CharField(required=False, allow_null=True, default=None, max_length=32)
    hyperparameters = serializers.DictField(required=False, default=dict)
    configuration = serializers.DictField(required=False, default=dict)
    tags = _tags(required=False)


class EnqueueSerializer(serializers.Serializer):
    queue = serializers.CharField(
        max_length=limits.QUEUE_NAME_MAX, required=False, default="default"
    )


class QueueEntrySerializer(serializers.Serializer):
    task = serializers.CharField(source="task_id")
    name = serializers.CharField(source="task.name")
    attempt = serializers.IntegerField(source="task.attempt")
    added = serializers.DateTimeField()


class QueueMoveSerializer(serializers.Serializer):
    direction = serializers.ChoiceField(choices=["up", "down"])


class ClaimSerializer(serializers.Serializer):
    attempt = _attempt()
    worker = serializers.CharField(max_length=limits.NAME_MAX)
    # One per message the worker handles: a retried claim (lost answer) is answered again.
    claim_id = serializers.RegexField(r"^[0-9a-f]{1,32}$", required=False, default="")


class HeartbeatSerializer(serializers.Serializer):
    attempt = _attempt()
    worker = serializers.CharField(max_length=limits.NAME_MAX, required=False, default="")


class PingSerializer(serializers.Serializer):
    keep_running = serializers.BooleanField()
    status = serializers.CharField()
    lease_seconds = serializers.FloatField()


def _measure(high: float, field=serializers.FloatField):
    return field(required=False, allow_null=True, min_value=0, max_value=high)


class StepResourcesSerializer(serializers.Serializer):
    """What a step's process group used, as its worker measured it; each may be null."""

    cpu_seconds = _measure(limits.RESOURCE_CPU_SECONDS_MAX)
    peak_rss_bytes = _measure(limits.RESOURCE_RSS_BYTES_MAX, serializers.IntegerField)
    wall_seconds = _measure(limits.RESOURCE_WALL_SECONDS_MAX)
    gpu_seconds = _measure(limits.RESOURCE_GPU_SECONDS_MAX)

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        # FloatField takes "nan" and "inf" as strings; a measurement is never either.
        for name, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise serializers.ValidationError({name: "must be a finite number"})
        return values


class FinishSerializer(serializers.Serializer):
    attempt = _attempt()
    status = serializers.ChoiceField(choices=["completed", "failed", "stopped"])
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    message = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=limits.STATUS_MESSAGE_MAX
    )
    resources = StepResourcesSerializer(required=False, default=dict)


class ReleaseSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1)
    worker = serializers.CharField(max_length=255)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class LogLineInSerializer(serializers.Serializer):
    stream = serializers.ChoiceField(choices=["stdout", "stderr", "system"], default="stdout")
    # Lines past 10,000 characters are cut when stored (execution.append_log).
    text = ConsoleTextField(allow_blank=True, trim_whitespace=False)


class ConsoleAppendSerializer(serializers.Serializer):
    lines = serializers.ListField(child=LogLineInSerializer(), max_length=10_000)
    # A batch sent again under the same id (its answer was lost) is stored once.
    batch_id = serializers.CharField(max_length=64, required=False, default="")


class LogLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = LogLine
        fields = ["seq", "stream", "text", "timestamp"]


class ArtifactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Artifact
        fields = [
            "id",
            "task",
            "name",
            "kind",
            "filename",
            "content_type",
            "url",
            "size",
            "sha256",
            "preview",
            "metadata",
            "state",
            "created",
            "updated",
        ]
        read_only_fields = fields


class ArtifactDeclareSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=limits.NAME_MAX)
    kind = serializers.CharField(max_length=16)
    filename = serializers.CharField(max_length=limits.NAME_MAX)
    size = serializers.IntegerField(min_value=0, max_value=limits.INT64_MAX)
    # Left out when the raw upload carries it after the bytes (X-Content-SHA256: trailing).
    sha256 = serializers.CharField(
        max_length=64, min_length=64, required=False, allow_blank=True, default=""
    )
    metadata = serializers.DictField(required=False, default=dict)
    preview = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=100_000
    )
    content_type = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=255
    )


class ModelSerializer(serializers.ModelSerializer):
    project_name = serializers.CharField(source="project.name", read_only=True)
    task_name = serializers.CharField(source="task.name", read_only=True)

    class Meta:
        model = TrainedModel
        fields = [
            "id",
            "task",
            "task_name",
            "project",
            "project_name",
            "name",
            "framework",
            "tags",
            "comment",
            "config",
            "labels",
            "filename",
            "package",
            "iteration",
            "url",
            "size",
            "sha256",
            "state",
            "created",
            "updated",
        ]
        read_only_fields = fields


class ModelDeclareSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    filename = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=0)
    framework = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    tags = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, default=list, max_length=50
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    config = serializers.DictField(required=False, default=dict)
    labels = serializers.DictField(child=serializers.IntegerField(), required=False, default=dict)
    package = serializers.BooleanField(required=False, default=False)
    iteration = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=-(2**63), max_value=2**63 - 1
    )


class InputModelSerializer(serializers.ModelSerializer):
    model = ModelSerializer(read_only=True)

    class Meta:
        model = ModelInput
        fields = ["name", "model", "connected"]
        read_only_fields = fields


class ConnectInputModelSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class MediaUrlSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=255, allow_blank=True)
    series = serializers.CharField(max_length=255, allow_blank=True)
    iteration = serializers.IntegerField(default=0, min_value=-(2**63), max_value=2**63 - 1)
    url = serializers.CharField(max_length=2048)
    content_type = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    max_history = serializers.IntegerField(required=False, default=0, min_value=0, max_value=10**6)


class QueueSerializer(serializers.ModelSerializer):
    length = serializers.IntegerField(read_only=True)
    workers = serializers.SerializerMethodField()

    class Meta:
        model = Queue
        fields = ["id", "name", "created", "length", "workers"]

    def get_workers(self, queue) -> list[str]:
        names = self.context.get("workers_by_queue", {})
        return names.get(queue.name, [])


class WorkerSerializer(serializers.ModelSerializer):
    alive = serializers.SerializerMethodField()
    current_task = serializers.SerializerMethodField()

    class Meta:
        model = Worker
        fields = ["name", "queues", "hostname", "pid", "current_task", "last_seen", "alive"]

    def get_alive(self, worker) -> bool:
        return worker.last_seen >= self.context["alive_since"]

    def get_current_task(self, worker) -> str | None:
        # Another team's task is not named, as everywhere else (the view passes the ids).
        visible = self.context.get("visible_tasks")
        task_id = worker.current_task_id
        return task_id if visible is None or task_id in visible else None


class WorkerHeartbeatSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=limits.NAME_MAX)
    queues = serializers.ListField(
        child=serializers.CharField(max_length=limits.QUEUE_NAME_MAX),
        default=list,
        max_length=limits.TAGS_MAX,
    )
    hostname = serializers.CharField(max_length=limits.NAME_MAX, required=False, default="")
    pid = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0, max_value=limits.INT32_MAX
    )


class WorkerUnregisterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=limits.NAME_MAX)


class EventListField(serializers.ListField):
    """A list of event objects. Each event is checked as it is stored (ingest_events): a
    serializer per event would cost more than storing it."""

    child = serializers.DictField()

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        if len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return data


class EventBatchSerializer(serializers.Serializer):
    batch_id = serializers.CharField(max_length=64, required=False, default="")
    events = EventListField(max_length=50_000)


class DebugSampleUploadSerializer(serializers.Serializer):
    """A debug sample: multipart fields beside the image."""

    file = serializers.FileField()
    title = serializers.CharField(max_length=limits.NAME_MAX, required=False, default="")
    series = serializers.CharField(max_length=limits.NAME_MAX, required=False, default="")
    iteration = serializers.IntegerField(
        required=False, default=0, min_value=limits.INT64_MIN, max_value=limits.INT64_MAX
    )
    # How many iterations of this title and series to keep (0: all).
    max_history = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=limits.INT32_MAX
    )


class ApiKeyCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["user", "worker"], required=False, default="user")
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    # Bounded: a lifetime past ~100 years is "no expiry" said confusingly.
    expires_in = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=100 * 365 * 86400
    )


class ApiKeyDeleteQuerySerializer(serializers.Serializer):
    prefix = serializers.CharField(max_length=16)


class ScalarChartsQuerySerializer(serializers.Serializer):
    """GET tasks/{id}/scalars/charts/: every series, or one title's."""

    title = serializers.CharField(required=False, max_length=255, allow_blank=False)


class SinceQuerySerializer(serializers.Serializer):
    """GET tasks/{id}/…/since/: what the task stored after the report batch `seq`."""

    seq = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=100_000, default=20_000)
