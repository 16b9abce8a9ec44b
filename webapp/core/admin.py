"""Admin pages for every model; actions go through the same services as the API."""

from django.contrib import admin, messages
from django.utils import timezone

from . import access, services
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
    SingleValue,
    Task,
    Team,
    TrainedModel,
    Worker,
)


class ScopedAdmin(admin.ModelAdmin):
    """Rows come from access.py like everywhere else (staff see all today; the admin then
    follows if that rule ever narrows)."""

    scope = None  # access.visible_projects / visible_tasks / visible_artifacts

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if self.scope is None:
            return queryset
        return queryset.filter(pk__in=type(self).scope(request.user).values("pk"))


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


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "created"]
    search_fields = ["name", "members__username"]
    filter_horizontal = ["members"]


@admin.register(Project)
class ProjectAdmin(ScopedAdmin):
    scope = access.visible_projects
    list_display = ["name", "team", "created", "created_by"]
    list_filter = ["team"]
    search_fields = ["name", "description"]
    raw_id_fields = ["created_by"]


@admin.register(Task)
class TaskAdmin(ScopedAdmin):
    scope = access.visible_tasks
    list_display = ["name", "project", "type", "status", "worker", "attempt", "last_update"]
    list_filter = ["status", "type", "archived", "project"]
    search_fields = ["id", "name", "project__name"]
    # A task's state moves only through its verbs (the actions, the dashboard's buttons):
    # the form shows it but cannot set it.
    readonly_fields = [
        *("id", "status", "status_reason", "attempt", "worker", "queue", "last_heartbeat"),
        *("created", "started", "completed", "last_update"),
    ]
    raw_id_fields = ["parent", "created_by"]
    actions = [enqueue_default, abort, archive]

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # Only what the form changed: the row may have moved on (a worker claimed it, the
        # engine ended it) since the page was loaded, and a whole-row save would undo that.
        obj.last_update = timezone.now()
        obj.save(update_fields=[*form.changed_data, "last_update"])


@admin.register(Artifact)
class ArtifactAdmin(ScopedAdmin):
    scope = access.visible_artifacts
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
    list_display = [
        "prefix",
        "user",
        "kind",
        "task",
        "name",
        "created",
        "last_used",
        "expires",
        "revoked",
    ]
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


@admin.register(SingleValue)
class SingleValueAdmin(admin.ModelAdmin):
    list_display = ["task", "name", "value", "timestamp"]
    search_fields = ["task__id", "name"]
    raw_id_fields = ["task"]


@admin.register(TrainedModel)
class TrainedModelAdmin(admin.ModelAdmin):
    """Read-only: weights are stored and verified only through the API."""

    list_display = ["name", "framework", "task", "state", "size", "created"]
    list_filter = ["state", "framework"]
    search_fields = ["name", "task__id", "id"]
    readonly_fields = [f.name for f in TrainedModel._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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
