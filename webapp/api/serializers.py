"""Request and response shapes. Validation of domain rules stays in services."""

from rest_framework import serializers

from webapp.core.choices import TaskType
from webapp.core.models import Artifact, LogLine, Project, Queue, Task, Worker


class ProjectSerializer(serializers.ModelSerializer):
    task_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Project
        fields = ["id", "name", "description", "created", "task_count"]
        read_only_fields = ["id", "created", "task_count"]


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


class ClaimSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1)
    worker = serializers.CharField(max_length=255)


class HeartbeatSerializer(serializers.Serializer):
    attempt = serializers.IntegerField(min_value=1)
    worker = serializers.CharField(max_length=255, required=False, default="")


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
    sha256 = serializers.CharField(max_length=64, min_length=64)
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
