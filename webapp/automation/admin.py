"""Admin pages for schedules and triggers. Saving goes through the same verbs as the API and
the dashboard (the form is checked by running the verb in a transaction rolled back), so
the admin can set nothing the verbs would refuse; firings are read-only history."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction

from webapp.core import access
from webapp.core.errors import DomainError

from . import schedules, targets, triggers
from .models import Schedule, ScheduleFiring, Trigger, TriggerFiring

# target_project is not on the admin's form; the API and the dashboard set it.
_TARGET_FIELDS = [name for name in targets.TARGET_FIELDS if name != "target_project"]
SCHEDULE_FIELDS = ["name", *_TARGET_FIELDS, *schedules.TIMING_FIELDS, "paused"]
TRIGGER_FIELDS = ["name", *triggers.CONDITION_FIELDS, *_TARGET_FIELDS, "paused"]


class _RolledBack(Exception):
    pass


class VerbForm(forms.ModelForm):
    """A model form whose save is a verb: create when adding, edit with what changed."""

    user = None
    create = None
    edit = None

    def values(self, changed_only: bool) -> dict:
        names = self.changed_data if changed_only else self._meta.fields
        values = {name: self.cleaned_data.get(name) for name in names if name in self.cleaned_data}
        for name in ("base_task", "watch_project"):
            if values.get(name) is not None:
                values[name] = values[name].pk if name == "base_task" else values[name].name
        return values

    def apply(self):
        if self.instance._state.adding:
            values = self.values(changed_only=False)
            return type(self).create(user=self.user, **values)
        return type(self).edit(self.instance, self.values(changed_only=True), user=self.user)

    def clean(self):
        cleaned = super().clean()
        try:
            with transaction.atomic():
                self.apply()
                raise _RolledBack
        except _RolledBack:
            pass
        except DomainError as error:
            field = error.details.get("field")
            self.add_error(field if field in self.fields else None, error.message)
        return cleaned


class ScheduleForm(VerbForm):
    create = staticmethod(schedules.create_schedule)
    edit = staticmethod(schedules.edit_schedule)

    class Meta:
        model = Schedule
        fields = SCHEDULE_FIELDS


class TriggerForm(VerbForm):
    create = staticmethod(triggers.create_trigger)
    edit = staticmethod(triggers.edit_trigger)

    class Meta:
        model = Trigger
        fields = TRIGGER_FIELDS


class FiringInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False
    readonly_fields = ["state", "reason", "task", "run", "created", "launched"]

    def has_add_permission(self, request, obj=None):
        return False


class ScheduleFiringInline(FiringInline):
    model = ScheduleFiring
    fields = readonly_fields = ["tick", *FiringInline.readonly_fields]


class TriggerFiringInline(FiringInline):
    model = TriggerFiring
    fields = readonly_fields = ["event_key", "source_task", *FiringInline.readonly_fields]


class VerbAdmin(admin.ModelAdmin):
    raw_id_fields = ["base_task"]
    actions = ["pause", "resume"]

    def get_queryset(self, request):
        projects = access.visible_projects(request.user).values("pk")
        return super().get_queryset(request).filter(project__in=projects)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.user = request.user
        return form

    def save_model(self, request, obj, form, change):
        saved = form.apply()
        obj.pk = saved.pk  # the admin's "saved" message and redirect name the verb's row

    def save_related(self, request, form, formsets, change):
        # The inlines are read-only history: nothing of theirs is saved.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def _each(self, request, queryset, verb, label):
        for row in queryset:
            verb(row)
        self.message_user(request, f"{label} {queryset.count()}", messages.SUCCESS)


@admin.register(Schedule)
class ScheduleAdmin(VerbAdmin):
    form = ScheduleForm
    list_display = ["name", "project", "when_label", "target_label", "paused", "next_tick"]
    list_filter = ["paused", "overlap", "missed", "target_kind"]
    search_fields = ["name", "project__name", "pipeline_name"]
    inlines = [ScheduleFiringInline]

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        self._each(request, queryset, schedules.pause_schedule, "Paused")

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        self._each(request, queryset, schedules.resume_schedule, "Resumed")


@admin.register(Trigger)
class TriggerAdmin(VerbAdmin):
    form = TriggerForm
    raw_id_fields = ["base_task", "watch_project"]
    list_display = ["name", "project", "event_label", "target_label", "paused"]
    list_filter = ["paused", "event", "source", "target_kind"]
    search_fields = ["name", "project__name"]
    inlines = [TriggerFiringInline]

    @admin.action(description="Pause")
    def pause(self, request, queryset):
        self._each(request, queryset, triggers.pause_trigger, "Paused")

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        self._each(request, queryset, triggers.resume_trigger, "Resumed")
