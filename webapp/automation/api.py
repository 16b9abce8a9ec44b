"""/api/v1/schedules/ and /api/v1/triggers/: thin viewsets over the verbs.

Only a person's own credentials (a session or a user key) may use them: what a schedule or
trigger starts runs as its owner, so a step's task key or a worker key must not set one up.
Rows are those of the projects access.py lets the caller see; anything else is not found.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from webapp.core import access

from . import schedules, triggers
from . import serializers as s
from .models import Schedule, Trigger


class _AutomationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    # Their verbs in the policy table (webapp/core/policy.py): a person's credentials only.
    verbs = {
        "list": "automation.read",
        "retrieve": "automation.read",
        "firings": "automation.read",
        "create": "automation.manage",
        "partial_update": "automation.manage",
        "destroy": "automation.manage",
        "pause": "automation.manage",
        "resume": "automation.manage",
    }
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    model = None
    input_serializer = None
    firing_serializer = None

    def get_queryset(self):
        projects = access.visible_projects(self.request.user, self.request.auth)
        rows = self.model.objects.filter(project__in=projects.values("pk")).select_related(
            "project", "created_by", "target_project", "base_task"
        )
        name, project = (
            self.request.query_params.get("name"),
            self.request.query_params.get("project"),
        )
        if name:
            rows = rows.filter(name=name)
        if project:
            rows = rows.filter(project__name=project)
        return rows

    def _input(self, partial: bool) -> dict:
        data = self.input_serializer(data=self.request.data, partial=partial)
        data.is_valid(raise_exception=True)
        return dict(data.validated_data)

    def _answer(self, row, code=status.HTTP_200_OK):
        row = get_object_or_404(self.get_queryset(), pk=row.pk)
        return Response(self.get_serializer(row).data, status=code)

    def firings_of(self, request, row):
        page = self.paginate_queryset(row.firings.all())
        return self.get_paginated_response(self.firing_serializer(page, many=True).data)


class ScheduleViewSet(_AutomationViewSet):
    serializer_class = s.ScheduleSerializer
    model = Schedule
    input_serializer = s.ScheduleInputSerializer
    firing_serializer = s.ScheduleFiringSerializer

    @extend_schema(request=s.ScheduleInputSerializer, responses=s.ScheduleSerializer)
    def create(self, request):
        values = self._input(partial=False)
        schedule = schedules.create_schedule(user=request.user, **values)
        return self._answer(schedule, status.HTTP_201_CREATED)

    @extend_schema(request=s.ScheduleInputSerializer, responses=s.ScheduleSerializer)
    def partial_update(self, request, pk=None):
        schedule = self.get_object()
        schedule = schedules.edit_schedule(schedule, self._input(partial=True), user=request.user)
        return self._answer(schedule)

    def perform_destroy(self, instance):
        schedules.delete_schedule(instance)

    @extend_schema(request=None, responses=s.ScheduleSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._answer(schedules.pause_schedule(self.get_object()))

    @extend_schema(request=None, responses=s.ScheduleSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._answer(schedules.resume_schedule(self.get_object()))

    @extend_schema(request=None, responses=s.ScheduleFiringSerializer(many=True))
    @action(detail=True, methods=["get"])
    def firings(self, request, pk=None):
        return self.firings_of(request, self.get_object())


class TriggerViewSet(_AutomationViewSet):
    serializer_class = s.TriggerSerializer
    model = Trigger
    input_serializer = s.TriggerInputSerializer
    firing_serializer = s.TriggerFiringSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("watch_project")

    @extend_schema(request=s.TriggerInputSerializer, responses=s.TriggerSerializer)
    def create(self, request):
        trigger = triggers.create_trigger(user=request.user, **self._input(partial=False))
        return self._answer(trigger, status.HTTP_201_CREATED)

    @extend_schema(request=s.TriggerInputSerializer, responses=s.TriggerSerializer)
    def partial_update(self, request, pk=None):
        trigger = self.get_object()
        trigger = triggers.edit_trigger(trigger, self._input(partial=True), user=request.user)
        return self._answer(trigger)

    def perform_destroy(self, instance):
        triggers.delete_trigger(instance)

    @extend_schema(request=None, responses=s.TriggerSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._answer(triggers.pause_trigger(self.get_object()))

    @extend_schema(request=None, responses=s.TriggerSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._answer(triggers.resume_trigger(self.get_object()))

    @extend_schema(request=None, responses=s.TriggerFiringSerializer(many=True))
    @action(detail=True, methods=["get"])
    def firings(self, request, pk=None):
        return self.firings_of(request, self.get_object())
