"""Pipeline runs: start (validated DAG), read with nodes, stop, and the client-driver verbs."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from webapp.core import access, engine, policy, presenters
from webapp.core.choices import PipelineDriver
from webapp.core.models import PipelineNode, PipelineRun


class PipelineNodeSerializer(serializers.ModelSerializer):
    task_status = serializers.CharField(source="task.status", default=None, read_only=True)

    class Meta:
        model = PipelineNode
        fields = [
            "name",
            "status",
            "task",
            "task_status",
            "base_task",
            "resolved_overrides",
            "attempts",
            "message",
            "updated",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["resolved_overrides"] = presenters.read_overrides(data.get("resolved_overrides"))
        return data


class PipelineRunSerializer(serializers.ModelSerializer):
    nodes = PipelineNodeSerializer(many=True, read_only=True)
    name = serializers.CharField(source="controller.name", read_only=True)
    project_name = serializers.CharField(source="controller.project.name", read_only=True)

    class Meta:
        model = PipelineRun
        fields = [
            "id",
            "controller",
            "name",
            "project_name",
            "status",
            "steps",
            "parameters",
            "default_queue",
            "abort_on_failure",
            "driver",
            "created",
            "completed",
            "nodes",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["steps"] = presenters.read_steps(data.get("steps"))
        return data


class PipelineStartSerializer(serializers.Serializer):
    controller = serializers.CharField(max_length=32)
    steps = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=20_000)
    parameters = serializers.DictField(required=False, default=dict)
    default_queue = serializers.CharField(max_length=100, required=False, default="default")
    abort_on_failure = serializers.BooleanField(required=False, default=False)
    driver = serializers.ChoiceField(
        choices=[PipelineDriver.SERVER, PipelineDriver.CLIENT], default=PipelineDriver.SERVER
    )
    version = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class StepNameSerializer(serializers.Serializer):
    step = serializers.CharField(max_length=255)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)


class PipelineRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PipelineRunSerializer
    # Each action's verb in the policy table; the drive verbs are judged on the controller.
    verbs = {
        "list": "task.read",
        "retrieve": "task.read",
        **{
            name: "pipeline.drive"
            for name in ("create", "stop", "rerun", "advance", "launch", "skip")
        },
    }

    def get_queryset(self):
        tasks = access.visible_tasks(self.request.user, self.request.auth)
        runs = PipelineRun.objects.filter(controller__in=tasks).select_related(
            "controller__project"
        )
        if self.action == "retrieve":
            runs = runs.prefetch_related("nodes__task")
        return runs

    def get_serializer_class(self):
        return PipelineRunSerializer

    @extend_schema(request=PipelineStartSerializer, responses=PipelineRunSerializer)
    def create(self, request):
        data = PipelineStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        tasks = access.visible_tasks(request.user, request.auth)
        controller = get_object_or_404(tasks, pk=values["controller"])
        self.check_object_permissions(request, controller)
        user = request.user
        if request.policy_rule == policy.RUNS:
            # A worker key drives the pipeline of a controller it runs as its owner, with
            # the base tasks that owner sees.
            user = controller.created_by
            tasks = access.visible_tasks(user)
        run = engine.start_run(
            user=user,
            controller=controller,
            steps=values["steps"],
            parameters=values["parameters"],
            default_queue=values["default_queue"],
            abort_on_failure=values["abort_on_failure"],
            driver=values["driver"],
            visible_tasks=tasks,
            version=values["version"],
        )
        return Response(self._read(run.pk), status=status.HTTP_201_CREATED)

    def _read(self, run_id):
        run = PipelineRun.objects.prefetch_related("nodes__task").get(pk=run_id)
        return PipelineRunSerializer(run).data

    @extend_schema(request=None, responses=PipelineRunSerializer)
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        run = self.get_object()
        self.check_object_permissions(request, run.controller)
        engine.stop_run(run.pk, "stopped by user")
        return Response(self._read(run.pk))

    @extend_schema(request=None, responses=PipelineRunSerializer)
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        """Run an ended server-driven pipeline again: a new run of the same steps."""
        run = self.get_object()
        self.check_object_permissions(request, run.controller)
        new_run = engine.rerun(run.pk, user=request.user)
        return Response(self._read(new_run.pk), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=PipelineRunSerializer)
    @action(detail=True, methods=["post"])
    def advance(self, request, pk=None):
        run = self.get_object()
        engine.advance(run.pk)
        return Response(self._read(run.pk))

    @extend_schema(request=StepNameSerializer, responses=PipelineNodeSerializer)
    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        run = self.get_object()
        self.check_object_permissions(request, run.controller)
        data = StepNameSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        node = engine.launch_step(run, data.validated_data["step"])
        node.refresh_from_db()
        return Response(PipelineNodeSerializer(node).data)

    @extend_schema(request=StepNameSerializer, responses=PipelineNodeSerializer)
    @action(detail=True, methods=["post"])
    def skip(self, request, pk=None):
        run = self.get_object()
        self.check_object_permissions(request, run.controller)
        data = StepNameSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        node = engine.skip_step(
            run, data.validated_data["step"], data.validated_data["reason"] or "skipped"
        )
        node.refresh_from_db()
        return Response(PipelineNodeSerializer(node).data)
