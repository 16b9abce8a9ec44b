"""Request and response shapes. Validation of domain rules stays in services."""

import copy

from rest_framework import serializers

from webapp.core import presenters
from webapp.core.choices import TaskType
from webapp.core.models import Artifact, LogLine, Project, Queue, Task, Team, Worker


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

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["team"] = instance.team_id
        return data


class TeamSerializer(serializers.ModelSerializer):
    members = serializers.SlugRelatedField(
        many=True, slug_field="username", read_only=True, help_text="usernames"
    )

    class Meta:
        model = Team
        fields = ["id", "name", "members", "created"]
        read_only_fields = ["id", "members", "created"]


class TeamCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
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
    project_name = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=255)
    type = serializers.ChoiceField(choices=TaskType.choices, default=TaskType.TRAINING)
    script = serializers.DictField(required=False, default=dict)
    hyperparameters = serializers.DictField(required=False, default=dict)
    configuration = serializers.DictField(required=False, default=dict)
    tags = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    parent = serializers.CharField(required=False, allow_null=True, default=None)
    start_running = serializers.BooleanField(required=False, default=False)


class TaskEditSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, required=False)
    type = serializers.ChoiceField(choices=TaskType.choices, required=False)
    comment = serializers.CharField(required=False, allow_blank=True)
    script = serializers.DictField(required=False)
    hyperparameters = serializers.DictField(required=False)
    configuration = serializers.DictField(required=False)
    runtime = serializers.DictField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    max_attempts = serializers.IntegerField(min_value=1, max_value=100, required=False)
    time_limit = serializers.FloatField(min_value=0.001, required=False, allow_null=True)


class ParametersSerializer(serializers.Serializer):
    values = serializers.DictField()
    replace = serializers.BooleanField(required=False, default=False)


class StatusChangeSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    message = serializers.CharField(required=False, allow_blank=True, default="")


class CloneSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, required=False)
    project_name = serializers.CharField(max_length=255, required=False)
    parent = serializers.CharField(required=False, allow_null=True, default=None)
    hyperparameters = serializers.DictField(required=False, default=dict)
    configuration = serializers.DictField(required=False, default=dict)
    tags = serializers.ListField(child=serializers.CharField(), required=False)


class EnqueueSerializer(serializers.Serializer):
    queue = serializers.CharField(max_length=100, required=False, default="default")


class QueueEntrySerializer(serializers.Serializer):
    task = serializers.CharField(source="task_id")
    name = serializers.CharField(source="task.name")
    attempt = serializers.IntegerField(source="task.attempt")
    added = serializers.DateTimeField()


class QueueMoveSerializer(serializers.Serializer):
    direction = serializers.ChoiceField(choices=["up", "down"])


class ClaimSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1)
    worker = serializers.CharField(max_length=255)
    # One per message the worker handles: a retried claim (lost answer) is answered again.
    claim_id = serializers.RegexField(r"^[0-9a-f]{1,32}$", required=False, default="")


class HeartbeatSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1)
    worker = serializers.CharField(max_length=255, required=False, default="")


class PingSerializer(serializers.Serializer):
    keep_running = serializers.BooleanField()
    status = serializers.CharField()
    lease_seconds = serializers.FloatField()


class FinishSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1)
    status = serializers.ChoiceField(choices=["completed", "failed", "stopped"])
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    message = serializers.CharField(required=False, allow_blank=True, default="")


class LogLineInSerializer(serializers.Serializer):
    stream = serializers.ChoiceField(choices=["stdout", "stderr", "system"], default="stdout")
    text = serializers.CharField(allow_blank=True, trim_whitespace=False)


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
    name = serializers.CharField(max_length=255)
    kind = serializers.CharField(max_length=16)
    filename = serializers.CharField(max_length=255)
    size = serializers.IntegerField(min_value=0)
    # Left out when the raw upload carries it after the bytes (X-Content-SHA256: trailing).
    sha256 = serializers.CharField(
        max_length=64, min_length=64, required=False, allow_blank=True, default=""
    )
    metadata = serializers.DictField(required=False, default=dict)
    preview = serializers.CharField(required=False, allow_blank=True, default="")
    content_type = serializers.CharField(required=False, allow_blank=True, default="")


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

    class Meta:
        model = Worker
        fields = ["name", "queues", "hostname", "pid", "current_task", "last_seen", "alive"]

    def get_alive(self, worker) -> bool:
        return worker.last_seen >= self.context["alive_since"]


class WorkerHeartbeatSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    queues = serializers.ListField(child=serializers.CharField(max_length=100), default=list)
    hostname = serializers.CharField(max_length=255, required=False, default="")
    pid = serializers.IntegerField(required=False, allow_null=True, default=None)


class EventBatchSerializer(serializers.Serializer):
    batch_id = serializers.CharField(max_length=64, required=False, default="")
    events = serializers.ListField(child=serializers.DictField(), max_length=50_000)


class ScalarChartsQuerySerializer(serializers.Serializer):
    """GET tasks/{id}/scalars/charts/: every series, or one title's."""

    title = serializers.CharField(required=False, max_length=255, allow_blank=False)


class SinceQuerySerializer(serializers.Serializer):
    """GET tasks/{id}/…/since/: what the task stored after the report batch `seq`."""

    seq = serializers.IntegerField(min_value=0, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=100_000, default=20_000)
