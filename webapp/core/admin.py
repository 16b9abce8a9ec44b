"""Admin pages for every model; actions go through the same services as the API."""

from django.contrib import admin, messages

from . import services
from .errors import DomainError
from .models import (
    ApiKey,
    Artifact,
    DebugSample,
    LogLine,
    PipelineNode,
    PipelineRun,
    Plot,
    Project,
    Queue,
    QueueEntry,
    Scalar,
    Task,
    Worker,
)


def _apply(modeladmin, request, queryset, verb, label):
    done = 0
    for task in queryset:
        try:
            verb(task)
            done += 1
        except DomainError as error:
            modeladmin.message_user(request, f"{task}: {error.message}", messages.WARNING)
    modeladmin.message_user(request, f"{label} {done} task(s)")


@admin.action(description="Enqueue on 'default'")
def enqueue_default(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, lambda t: services.enqueue_task(t, "default"), "Queued")


@admin.action(description="Abort")
def abort(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, services.abort_task, "Aborted")


@admin.action(description="Archive")
def archive(modeladmin, request, queryset):
    _apply(modeladmin, request, queryset, services.archive_task, "Archived")


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "created", "created_by"]
    search_fields = ["name", "description"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "type", "status", "worker", "attempt", "last_update"]
    list_filter = ["status", "type", "archived", "project"]
    search_fields = ["id", "name", "project__name"]
    readonly_fields = ["id", "created", "started", "completed", "last_update", "last_heartbeat"]
    raw_id_fields = ["parent", "queue", "created_by"]
    actions = [enqueue_default, abort, archive]


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["name", "task", "kind", "state", "size", "updated"]
    list_filter = ["kind", "state"]
    search_fields = ["name", "task__id", "task__name", "sha256"]
    raw_id_fields = ["task"]


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = ["name", "created"]
    search_fields = ["name"]


@admin.register(QueueEntry)
class QueueEntryAdmin(admin.ModelAdmin):
    list_display = ["task", "queue", "position", "added", "last_published"]
    list_filter = ["queue"]
    raw_id_fields = ["task"]


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ["name", "hostname", "queues", "current_task", "last_seen"]
    search_fields = ["name", "hostname"]
    raw_id_fields = ["current_task"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "kind", "task", "name", "created", "last_used", "revoked"]
    list_filter = ["kind"]
    search_fields = ["prefix", "user__username", "name"]
    readonly_fields = ["prefix", "hashed_secret", "created", "last_used"]
    raw_id_fields = ["task"]


@admin.register(LogLine)
class LogLineAdmin(admin.ModelAdmin):
    list_display = ["task", "seq", "stream", "text", "timestamp"]
    list_filter = ["stream"]
    search_fields = ["task__id", "text"]
    raw_id_fields = ["task"]


@admin.register(Scalar)
class ScalarAdmin(admin.ModelAdmin):
    list_display = ["task", "title", "series", "iteration", "value"]
    search_fields = ["task__id", "title", "series"]
    raw_id_fields = ["task"]


@admin.register(Plot)
class PlotAdmin(admin.ModelAdmin):
    list_display = ["task", "title", "series", "iteration", "timestamp"]
    search_fields = ["task__id", "title", "series"]
    raw_id_fields = ["task"]


@admin.register(DebugSample)
class DebugSampleAdmin(admin.ModelAdmin):
    list_display = ["task", "title", "series", "iteration", "timestamp"]
    raw_id_fields = ["task"]


class PipelineNodeInline(admin.TabularInline):
    model = PipelineNode
    extra = 0
    fields = ["name", "status", "task", "attempts", "message"]
    readonly_fields = fields
    can_delete = False


@admin.register(PipelineRun)
class PipelineRunAdmin(admin.ModelAdmin):
    list_display = ["controller", "status", "created", "completed"]
    list_filter = ["status"]
    search_fields = ["controller__name", "id"]
    raw_id_fields = ["controller"]
    inlines = [PipelineNodeInline]
