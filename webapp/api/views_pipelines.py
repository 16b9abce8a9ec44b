"""Pipeline runs: start (validated DAG), read with nodes, stop, plan, rerun (whole, or from a
step with edits), compare two runs, and the verbs of the runs a script drives or builds: add
steps, close, resolve, launch or skip one step, its items."""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from pipelines import fanout
from webapp.core import access, engine, limits, policy, presenters, run_diff
from webapp.core.choices import PipelineDefinition, PipelineDriver
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
            "decision",
        ]
        extra_kwargs = {
            "decision": {
                "help_text": "why the step ran or was reused: {outcome: ran|reused, code, "
                "reason, changes: [{code, text}], compared_with: {run, task}, caching}"
            }
        }

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
            "definition",
            "created",
            "completed",
            "rerun_of",
            "rerun_from_step",
            "nodes",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["steps"] = presenters.read_steps(data.get("steps"))
        return data


def _steps_field(min_length: int = 1):
    return serializers.ListField(
        child=serializers.DictField(), min_length=min_length, max_length=20_000
    )


class PipelineStartSerializer(serializers.Serializer):
    controller = serializers.CharField(max_length=32)
    # Empty only for an open definition, whose script adds its steps as it goes.
    steps = _steps_field(min_length=0)
    parameters = serializers.DictField(required=False, default=dict)
    default_queue = serializers.CharField(max_length=100, required=False, default="default")
    abort_on_failure = serializers.BooleanField(required=False, default=False)
    driver = serializers.ChoiceField(
        choices=[PipelineDriver.SERVER, PipelineDriver.CLIENT], default=PipelineDriver.SERVER
    )
    version = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    definition = serializers.ChoiceField(
        choices=[PipelineDefinition.FIXED, PipelineDefinition.OPEN],
        default=PipelineDefinition.FIXED,
        help_text="open: the script adds steps as it runs (POST steps/), then closes it",
    )


class PipelineStepsSerializer(serializers.Serializer):
    steps = _steps_field()


class StepNameSerializer(serializers.Serializer):
    step = serializers.CharField(max_length=255)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)


class StepLaunchSerializer(serializers.Serializer):
    step = serializers.CharField(max_length=255)
    parameters = serializers.DictField(
        required=False,
        help_text='the step\'s {"Section/name": value} as its controller decided them '
        "(used as they are, instead of resolving its overrides)",
    )
    configuration = serializers.DictField(required=False)
    local = serializers.BooleanField(
        default=False, help_text="make its task a draft the controller's process runs itself"
    )

    def validate(self, data):
        for field in ("parameters", "configuration"):
            if len(data.get(field) or {}) > limits.PARAMETERS_MAX:
                raise serializers.ValidationError(
                    {field: f"at most {limits.PARAMETERS_MAX} values"}
                )
        return data


class StepResolvedSerializer(serializers.Serializer):
    parameters = serializers.DictField()
    configuration = serializers.DictField()


class RerunFromSerializer(serializers.Serializer):
    step = serializers.CharField(max_length=255, help_text="the step to run again, and all below")
    parameter_override = serializers.DictField(
        child=serializers.DictField(),
        required=False,
        default=dict,
        help_text='edits by step: {"stage_process": {"General/test_size": 0.3}}; only the '
        "step and the steps below it, only parameters they have",
    )
    dry_run = serializers.BooleanField(default=False, help_text="only answer the plan")

    def validate_parameter_override(self, value):
        if len(value) > limits.PARAMETERS_MAX or any(
            len(edits) > limits.PARAMETERS_MAX for edits in value.values()
        ):
            raise serializers.ValidationError(f"at most {limits.PARAMETERS_MAX} values")
        return value


class PlanStepSerializer(serializers.Serializer):
    name = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["ran", "reused", "fails", "skipped"])
    code = serializers.CharField()
    reason = serializers.CharField()
    changes = serializers.ListField(child=serializers.DictField())
    task = serializers.CharField(allow_null=True, help_text="the task a reused step keeps")


class PlanSerializer(serializers.Serializer):
    steps = PlanStepSerializer(many=True)
    run = serializers.IntegerField(help_text="how many steps would run")
    reused = serializers.IntegerField(help_text="how many would be reused")


class PlanRequestSerializer(serializers.Serializer):
    project = serializers.CharField(max_length=255, help_text="the controller's project")
    name = serializers.CharField(max_length=255, help_text="the controller's name")
    steps = _steps_field()
    parameters = serializers.DictField(required=False, default=dict)


class DiffQuerySerializer(serializers.Serializer):
    other = serializers.CharField(
        max_length=32, required=False, help_text="the run to compare with (default: the previous)"
    )


def _plan_answer(entries: list) -> dict:
    outcomes = [entry["outcome"] for entry in entries]
    return PlanSerializer(
        {"steps": entries, "run": outcomes.count("ran"), "reused": outcomes.count("reused")}
    ).data


class MapItemsQuerySerializer(serializers.Serializer):
    step = serializers.CharField(max_length=255)
    offset = serializers.IntegerField(min_value=0, max_value=fanout.MAP_ITEMS_MAX, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=1000)


class MapItemsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    items = serializers.ListField(child=serializers.DictField())


class PipelineRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PipelineRunSerializer
    # Each action's verb in the policy table; the drive verbs are judged on the controller.
    verbs = {
        "list": "task.read",
        "retrieve": "task.read",
        "items": "task.read",
        "diff": "task.read",
        "plan": "pipeline.plan",
        **{
            name: "pipeline.drive"
            for name in (
                *("create", "stop", "rerun", "rerun_from", "advance", "launch", "skip"),
                *("steps", "close", "resolve"),
            )
        },
    }

    def get_queryset(self):
        tasks = access.visible_tasks(self.request.user, self.request.auth)
        runs = PipelineRun.objects.filter(controller__in=tasks).select_related(
            "controller__project"
        )
        if self.action == "retrieve":
            runs = runs.prefetch_related(_step_nodes())
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
            open_definition=values["definition"] == PipelineDefinition.OPEN,
        )
        return Response(self._read(run.pk), status=status.HTTP_201_CREATED)

    def _read(self, run_id):
        run = PipelineRun.objects.prefetch_related(_step_nodes()).get(pk=run_id)
        return PipelineRunSerializer(run).data

    def _run_to_change(self):
        run = self.get_object()
        self.check_object_permissions(self.request, run.controller)
        return run

    def _input(self, serializer_class):
        data = serializer_class(data=self.request.data)
        data.is_valid(raise_exception=True)
        return data.validated_data

    @extend_schema(request=PipelineStepsSerializer, responses=PipelineRunSerializer)
    @action(detail=True, methods=["post"])
    def steps(self, request, pk=None):
        """Add steps to a run whose definition is open (its script is still running)."""
        run = self._run_to_change()
        values = self._input(PipelineStepsSerializer)
        tasks = access.visible_tasks(request.user, request.auth)
        engine.add_steps(run, values["steps"], tasks)
        return Response(self._read(run.pk), status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=PipelineRunSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """The script of an open run added its last step: the run may now end."""
        run = self._run_to_change()
        engine.close_definition(run)
        return Response(self._read(run.pk))

    @extend_schema(request=StepNameSerializer, responses=StepResolvedSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """What a pending step's overrides resolve to now (shown to pre_execute_callback)."""
        run = self._run_to_change()
        values = self._input(StepNameSerializer)
        resolved = engine.resolve_step(run, values["step"])
        return Response(StepResolvedSerializer(resolved).data)

    @extend_schema(parameters=[MapItemsQuerySerializer], responses=MapItemsSerializer)
    @action(detail=True, methods=["get"])
    def items(self, request, pk=None):
        """A fan-out's items in order, each with its status and result, a page at a time."""
        run = self.get_object()
        query = MapItemsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        values = query.validated_data
        page = engine.map_items(run, values["step"], values["offset"], values["limit"])
        return Response(MapItemsSerializer(page).data)

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

    @extend_schema(
        request=RerunFromSerializer, responses={201: PipelineRunSerializer, 200: PlanSerializer}
    )
    @action(detail=True, methods=["post"])
    def rerun_from(self, request, pk=None):
        """Run an ended run again from one step with edits: the completed steps outside its
        subtree are reused (same tasks), the step and those below run. `dry_run` answers the
        plan instead."""
        run = self._run_to_change()
        values = self._input(RerunFromSerializer)
        answer = engine.rerun_from(
            run.pk,
            user=request.user,
            step=values["step"],
            parameter_override=values["parameter_override"],
            dry_run=values["dry_run"],
        )
        if values["dry_run"]:
            return Response(_plan_answer(answer))
        return Response(self._read(answer.pk), status=status.HTTP_201_CREATED)

    @extend_schema(request=PlanRequestSerializer, responses=PlanSerializer)
    @action(detail=False, methods=["post"])
    def plan(self, request):
        """Which steps of a definition would run and which be reused, and why, compared
        with the pipeline's earlier runs; nothing is created."""
        values = self._input(PlanRequestSerializer)
        entries = engine.plan_new(
            user=request.user,
            project_name=values["project"],
            name=values["name"],
            steps=values["steps"],
            parameters=values["parameters"],
        )
        return Response(_plan_answer(entries))

    @extend_schema(parameters=[DiffQuerySerializer], responses=dict)
    @action(detail=True, methods=["get"])
    def diff(self, request, pk=None):
        """This run and another of its pipeline aligned by step: parameters, script, artifacts,
        last metrics, durations, status. Without `other`, the run before it."""
        query = DiffQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        run, other = run_diff.runs_to_compare(
            pk, query.validated_data.get("other"), request.user, request.auth
        )
        return Response(run_diff.diff(run, other))

    @extend_schema(request=None, responses=PipelineRunSerializer)
    @action(detail=True, methods=["post"])
    def advance(self, request, pk=None):
        run = self.get_object()
        engine.advance(run.pk)
        return Response(self._read(run.pk))

    @extend_schema(request=StepLaunchSerializer, responses=PipelineNodeSerializer)
    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        run = self._run_to_change()
        values = self._input(StepLaunchSerializer)
        node = engine.launch_step(
            run,
            values["step"],
            parameters=values.get("parameters"),
            configuration=values.get("configuration"),
            local=values["local"],
        )
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


def _step_nodes() -> Prefetch:
    """A run's nodes as its readers see them: its steps, not a fan-out's batches (those
    are read a page at a time, as items/)."""
    return Prefetch(
        "nodes", queryset=PipelineNode.objects.filter(map_step="").select_related("task")
    )
