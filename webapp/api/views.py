"""Thin viewsets: parse, check access, call one service, serialise."""

from django.conf import settings
from django.db.models import Count
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from webapp.core import access, artifacts, engine, events, execution, services, trained_models
from webapp.core.errors import Conflict
from webapp.core.models import LogLine, Plot, Project, Scalar, Task
from webapp.core.storage import TRAILING_SHA256, HashingUploadHandler, SpooledBody

from . import serializers as s
from .parsers import JSONParser


class ProjectViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.ProjectSerializer
    # Each action's verb in the policy table (webapp/core/policy.py).
    verbs = {"list": "project.read", "retrieve": "project.read", "create": "project.create"}

    def get_queryset(self):
        projects = access.visible_projects(self.request.user, self.request.auth)
        name = _query(self.request, s.ProjectListQuerySerializer).get("name")
        if name:
            projects = projects.filter(name=name)
        # Meta.ordering is dropped from GROUP BY queries: order explicitly for stable pages.
        return projects.annotate(task_count=Count("tasks")).order_by("name")

    def perform_create(self, serializer):
        name = serializer.validated_data["name"]
        request = self.request
        project = services.get_or_create_project(
            name,
            access.project_owner(request.policy_rule, request.user, request.auth, name),
            team=serializer.validated_data.get("team"),
        )
        if serializer.validated_data.get("description"):
            project.description = serializer.validated_data["description"]
            project.save(update_fields=["description"])
        serializer.instance = project

    @extend_schema(parameters=[s.ProjectListQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class TaskViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.TaskSerializer
    parser_classes = [JSONParser]
    # Each action's verb in the policy table (webapp/core/policy.py); a pair is the verb
    # of GET and the verb of the methods that change something.
    verbs = {
        "list": "task.read",
        "retrieve": "task.read",
        "create": "task.create",
        "partial_update": "task.edit",
        "hyperparameters": ("task.read", "task.edit"),
        "configuration": ("task.read", "task.edit"),
        "runtime": ("task.read", "task.edit"),
        "started": "task.report",
        "ping": "task.report",
        "completed": "task.report",
        "failed": "task.report",
        "events": "task.report",
        "publish": "task.publish",
        "draft": "task.reset",
        "reset": "task.reset",
        "clone": "task.create",
        "enqueue": "task.queue",
        "dequeue": "task.queue",
        "move": "task.queue",
        "abort": "task.abort",
        "claim": "task.claim",
        "heartbeat": "task.claim",
        "finish": "task.claim",
        "release": "task.claim",
        "map_items": "task.report",
        "console": ("task.read", "task.console"),
        "artifact_list": ("task.read", "task.outputs"),
        "samples": ("task.read", "task.outputs"),
        "scalars": "task.read",
        "plots": "task.read",
        "single_values": "task.read",
        "models": ("task.read", "task.outputs"),
        "input_models": "task.outputs",
    }

    def get_queryset(self):
        tasks = access.visible_tasks(self.request.user, self.request.auth).select_related(
            "project", "queue"
        )
        if self.action != "list":
            return tasks
        q = _query(self.request, s.TaskListQuerySerializer)
        if q.get("project"):
            tasks = tasks.filter(project_id=q["project"])
        if q.get("project_name"):
            tasks = tasks.filter(project__name=q["project_name"])
        if q.get("name"):
            tasks = tasks.filter(name=q["name"])
        if q.get("search"):
            tasks = tasks.filter(name__icontains=q["search"])
        if q.get("status"):
            tasks = tasks.filter(status__in=q["status"].split(","))
        if q.get("type"):
            tasks = tasks.filter(type__in=q["type"].split(","))
        if q.get("parent"):
            tasks = tasks.filter(parent_id=q["parent"])
        if q.get("tag"):
            # JSON containment is not portable to SQLite, so match the serialised list.
            tasks = tasks.filter(tags__icontains=f'"{q["tag"]}"')
        if q.get("archived") not in ("1", "true"):
            tasks = tasks.filter(archived=False)
        ordering = q.get("ordering", "-created")
        allowed = {"created", "-created", "last_update", "-last_update", "name", "-name"}
        return tasks.order_by(ordering if ordering in allowed else "-created")

    def get_serializer_class(self):
        return s.TaskListSerializer if self.action == "list" else s.TaskSerializer

    def _respond(self, task, code=status.HTTP_200_OK):
        data = s.TaskSerializer(task, context={"request": self.request}).data
        return Response(data, status=code)

    def _parameters(self, task, field: str):
        """A task's hyperparameters or configuration, secrets masked (presenters.py)."""
        return Response(getattr(s.read_task(self.request, task), field))

    def _input(self, serializer_class):
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(parameters=[s.TaskListQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.TaskCreateSerializer, responses=s.TaskSerializer)
    def create(self, request):
        data = self._input(s.TaskCreateSerializer)
        parent = None
        if data.get("parent"):
            parent = get_object_or_404(self.get_queryset(), pk=data["parent"])
        owner, parent = access.new_task_for(
            request.policy_rule,
            request.user,
            request.auth,
            parent=parent,
            project=Project.objects.filter(name=data["project_name"].strip()).first(),
        )
        task = services.create_task(
            user=owner,
            project_name=data["project_name"],
            name=data["name"],
            task_type=data["type"],
            script=data["script"],
            hyperparameters=data["hyperparameters"],
            configuration=data["configuration"],
            tags=data["tags"],
            comment=data["comment"],
            parent=parent,
            start_running=data["start_running"],
        )
        return self._respond(task, status.HTTP_201_CREATED)

    @extend_schema(request=s.TaskEditSerializer, responses=s.TaskSerializer)
    def partial_update(self, request, pk=None):
        task = self.get_object()
        changes = self._input(s.TaskEditSerializer)
        return self._respond(services.edit_task(task, changes))

    @extend_schema(request=s.ParametersSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["get", "put"])
    def hyperparameters(self, request, pk=None):
        task = self.get_object()
        if request.method == "GET":
            return self._parameters(task, "hyperparameters")
        data = self._input(s.ParametersSerializer)
        task = services.set_hyperparameters(task, data["values"], replace=data["replace"])
        return self._parameters(task, "hyperparameters")

    @extend_schema(request=s.ParametersSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["get", "put"])
    def configuration(self, request, pk=None):
        task = self.get_object()
        if request.method == "GET":
            return self._parameters(task, "configuration")
        data = self._input(s.ParametersSerializer)
        merged = data["values"] if data["replace"] else {**task.configuration, **data["values"]}
        return self._parameters(
            services.edit_task(task, {"configuration": merged}), "configuration"
        )

    @extend_schema(request=s.ParametersSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["get", "put"])
    def runtime(self, request, pk=None):
        task = self.get_object()
        if request.method == "GET":
            return Response(task.runtime)
        data = self._input(s.ParametersSerializer)
        merged = data["values"] if data["replace"] else {**task.runtime, **data["values"]}
        return Response(services.edit_task(task, {"runtime": merged}).runtime)

    @extend_schema(request=s.StatusChangeSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def started(self, request, pk=None):
        return self._respond(services.mark_started(self.get_object()))

    @extend_schema(request=None, responses=s.PingSerializer)
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        task = self.get_object()
        alive = execution.ping_local_run(task)
        task.refresh_from_db(fields=["status"])
        return Response(
            {
                "keep_running": alive,
                "status": task.status,
                "lease_seconds": settings.LOCAL_RUN_LEASE_SECONDS,
            }
        )

    @extend_schema(request=s.MapItemsReportSerializer, responses=s.MapItemsRecordedSerializer)
    @action(detail=True, methods=["post"])
    def map_items(self, request, pk=None):
        """A fan-out's batch task reports the ends of its items (status and result)."""
        task = self.get_object()  # first: a task the caller may not see is not found
        data = self._input(s.MapItemsReportSerializer)
        recorded = engine.report_items(task, data["items"])
        return Response({"recorded": recorded})

    @extend_schema(request=s.StatusChangeSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def completed(self, request, pk=None):
        data = self._input(s.StatusChangeSerializer)
        task = services.mark_completed(self.get_object(), data["reason"], data["message"])
        return self._respond(task)

    @extend_schema(request=s.StatusChangeSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def failed(self, request, pk=None):
        data = self._input(s.StatusChangeSerializer)
        task = services.mark_failed(self.get_object(), data["reason"], data["message"])
        return self._respond(task)

    @extend_schema(request=s.StatusChangeSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        return self._respond(services.publish_task(self.get_object()))

    @extend_schema(request=None, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def draft(self, request, pk=None):
        return self._respond(services.make_draft(self.get_object()))

    @extend_schema(request=s.CloneSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def clone(self, request, pk=None):
        # The source is only read: any task the caller sees (no object rule of its own).
        source = get_object_or_404(self.get_queryset(), pk=pk)
        data = self._input(s.CloneSerializer)
        parent = None
        if data.get("parent"):
            parent = get_object_or_404(self.get_queryset(), pk=data["parent"])
        project_name = (data.get("project_name") or "").strip()
        owner, parent = access.new_task_for(
            request.policy_rule,
            request.user,
            request.auth,
            parent=parent,
            project=Project.objects.filter(name=project_name).first()
            if project_name
            else source.project,
            source=source,
        )
        task = services.clone_task(
            source,
            user=owner,
            name=data.get("name"),
            project_name=data.get("project_name"),
            parent=parent,
            hyperparameters=data["hyperparameters"],
            configuration=data["configuration"],
            tags=data.get("tags"),
        )
        return self._respond(task, status.HTTP_201_CREATED)

    @extend_schema(request=s.EnqueueSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def enqueue(self, request, pk=None):
        data = self._input(s.EnqueueSerializer)
        return self._respond(services.enqueue_task(self.get_object(), data["queue"]))

    @extend_schema(request=None, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def dequeue(self, request, pk=None):
        return self._respond(services.dequeue_task(self.get_object()))

    @extend_schema(request=s.QueueMoveSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        """Move a queued task one place earlier or later in its queue: workers take tasks
        in the queue's order."""
        task = self.get_object()
        services.move_queue_entry(task, self._input(s.QueueMoveSerializer)["direction"])
        return self._respond(task)

    @extend_schema(request=s.StatusChangeSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def abort(self, request, pk=None):
        data = self._input(s.StatusChangeSerializer)
        task = services.abort_task(self.get_object(), data["reason"] or "aborted by user")
        return self._respond(task)

    @extend_schema(request=None, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def reset(self, request, pk=None):
        return self._respond(services.reset_task(self.get_object()))

    @extend_schema(request=s.ClaimSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        data = self._input(s.ClaimSerializer)
        claimed = execution.claim_turn(pk, data["attempt"], data["worker"], data["claim_id"])
        if claimed is None:
            current = Task.objects.filter(pk=pk).values("status", "attempt").first()
            if current is None:
                return Response({"error": "not_found", "detail": "no such task"}, status=404)
            raise Conflict(
                f"task {pk} attempt {data['attempt']} is not claimable "
                f"(status {current['status']}, attempt {current['attempt']})",
                status=current["status"],
            )
        task, secret = claimed
        # The server's lease, so the worker heartbeats and fences by it whatever its own
        # PIPELINES_LEASE_SECONDS says.
        return Response(
            {
                "task": s.TaskSerializer(task).data,
                "task_key": secret,
                "lease_seconds": settings.TASK_LEASE_SECONDS,
            }
        )

    @extend_schema(request=s.HeartbeatSerializer, responses=None)
    @action(detail=True, methods=["post"])
    def heartbeat(self, request, pk=None):
        data = self._input(s.HeartbeatSerializer)
        extended = execution.extend_lease(pk, data["attempt"], data["worker"])
        if extended is None:
            return Response({"error": "not_found", "detail": "no such task"}, status=404)
        alive, current_status, attempt = extended
        return Response(
            {
                "keep_running": alive,
                "status": current_status,
                "attempt": attempt,
                "lease_seconds": settings.TASK_LEASE_SECONDS,
            }
        )

    @extend_schema(request=s.FinishSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def finish(self, request, pk=None):
        data = self._input(s.FinishSerializer)
        task = get_object_or_404(Task, pk=pk)
        task = execution.finish_task(
            task,
            data["attempt"],
            data["status"],
            data["reason"],
            data["message"],
            resources=data["resources"],
        )
        return self._respond(task)

    @extend_schema(request=s.ReleaseSerializer, responses=s.TaskSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """A worker shutting down hands back the attempt it runs: queued again, not charged."""
        data = self._input(s.ReleaseSerializer)
        task = get_object_or_404(Task, pk=pk)
        task = execution.release_task(task, data["attempt"], data["worker"], data["reason"])
        return self._respond(task)

    @extend_schema(
        request=s.ConsoleAppendSerializer,
        responses=s.LogLineSerializer(many=True),
        parameters=[s.ConsoleQuerySerializer],
    )
    @action(detail=True, methods=["get", "post"])
    def console(self, request, pk=None):
        task = self.get_object()
        if request.method == "POST":
            data = self._input(s.ConsoleAppendSerializer)
            added = execution.append_log(task, data["lines"], data["batch_id"])
            return Response({"added": added})
        query = _query(request, s.ConsoleQuerySerializer)
        since, limit = query["since"], query["limit"]
        lines = LogLine.objects.filter(task=task, seq__gt=since).order_by("seq")[:limit]
        return Response(s.LogLineSerializer(lines, many=True).data)

    @extend_schema(request=s.ArtifactDeclareSerializer, responses=s.ArtifactSerializer)
    @action(detail=True, methods=["get", "post"], url_path="artifacts")
    def artifact_list(self, request, pk=None):
        task = self.get_object()
        if request.method == "GET":
            return Response(s.ArtifactSerializer(task.artifacts.all(), many=True).data)
        data = self._input(s.ArtifactDeclareSerializer)
        artifact = artifacts.declare_artifact(
            task, base_url=request.build_absolute_uri("/"), **data
        )
        return Response(s.ArtifactSerializer(artifact).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.EventBatchSerializer, responses=None)
    @action(detail=True, methods=["post"])
    def events(self, request, pk=None):
        task = self.get_object()
        data = self._input(s.EventBatchSerializer)
        return Response(events.ingest_events(task, data["events"], data["batch_id"]))

    @extend_schema(responses=None, parameters=[s.ScalarsQuerySerializer])
    @action(detail=True, methods=["get"])
    def scalars(self, request, pk=None):
        task = self.get_object()
        query = _query(request, s.ScalarsQuerySerializer)
        points = Scalar.objects.filter(task=task).order_by("title", "series", "iteration")
        if query.get("title"):
            points = points.filter(title=query["title"])
        grouped: dict = {}
        for title, series, iteration, value in points.values_list(
            "title", "series", "iteration", "value"
        ):
            entry = grouped.setdefault(title, {}).setdefault(series, {"x": [], "y": []})
            entry["x"].append(iteration)
            entry["y"].append(_json_float(value))
        max_points = query["max_points"]
        if max_points:
            for series in grouped.values():
                for entry in series.values():
                    entry["x"], entry["y"] = events.downsample(entry["x"], entry["y"], max_points)
        return Response(grouped)

    @extend_schema(responses=None)
    @action(detail=True, methods=["get"])
    def plots(self, request, pk=None):
        task = self.get_object()
        rows = Plot.objects.filter(task=task).order_by("title", "series", "iteration")
        return Response(
            [
                {"title": p.title, "series": p.series, "iteration": p.iteration, "figure": p.figure}
                for p in rows
            ]
        )

    @extend_schema(responses=None)
    @action(detail=True, methods=["get"], url_path="single-values")
    def single_values(self, request, pk=None):
        """{name: value}: what the task reported with report_single_value."""
        return Response(events.single_values(self.get_object()))

    @extend_schema(
        request={
            "multipart/form-data": s.DebugSampleUploadSerializer,
            "application/json": s.MediaUrlSerializer,
        },
        responses=None,
    )
    @action(detail=True, methods=["get", "post"], parser_classes=[MultiPartParser, JSONParser])
    def samples(self, request, pk=None):
        """Media: a multipart upload (field `file`), or JSON naming a `url` to keep as it is."""
        task = self.get_object()
        if request.method == "POST":
            if request.content_type.startswith("application/json"):
                data = self._input(s.MediaUrlSerializer)
                sample = events.link_media_url(task, **data)
                return Response({"id": sample.id}, status=status.HTTP_201_CREATED)
            data = self._input(s.DebugSampleUploadSerializer)
            sample = events.store_debug_sample(
                task,
                title=data["title"],
                series=data["series"],
                iteration=data["iteration"],
                uploaded=data["file"],
                max_history=data["max_history"],
            )
            return Response({"id": sample.id}, status=status.HTTP_201_CREATED)
        rows = task.debug_samples.order_by("title", "series", "iteration")
        return Response(
            [
                {
                    "id": row.id,
                    "title": row.title,
                    "series": row.series,
                    "iteration": row.iteration,
                    "content_type": row.content_type,
                    "kind": events.media_kind(row.content_type),
                    "url": row.url
                    or (
                        request.build_absolute_uri(f"/api/v1/samples/{row.id}/")
                        if row.storage_key
                        else None
                    ),
                    "stored": bool(row.storage_key),
                    # Media another client reported where this server cannot fetch it.
                    "location": row.location,
                }
                for row in rows
            ]
        )

    @extend_schema(request=s.ModelDeclareSerializer, responses=s.ModelSerializer)
    @action(detail=True, methods=["get", "post"])
    def models(self, request, pk=None):
        """GET: {output: [...], input: [...]}; POST: declare an output model (pending)."""
        task = self.get_object()
        if request.method == "GET":
            return Response(
                {
                    "output": s.ModelSerializer(
                        task.output_models.select_related("project", "task"), many=True
                    ).data,
                    "input": s.InputModelSerializer(
                        task.input_models.select_related("model__project", "model__task"),
                        many=True,
                    ).data,
                }
            )
        data = self._input(s.ModelDeclareSerializer)
        model = trained_models.declare_model(task, base_url=request.build_absolute_uri("/"), **data)
        return Response(s.ModelSerializer(model).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ConnectInputModelSerializer, responses=None)
    @action(detail=True, methods=["post"], url_path="input-models")
    def input_models(self, request, pk=None):
        """Record a model the task uses (ClearML's `task.connect(InputModel(...))`)."""
        task = self.get_object()
        data = self._input(s.ConnectInputModelSerializer)
        visible = access.visible_models(request.user, request.auth)
        model = get_object_or_404(visible, pk=data["model"])
        link = trained_models.connect_input_model(task, model, data["name"])
        return Response(s.InputModelSerializer(link).data, status=status.HTTP_201_CREATED)


def _json_float(value):
    # SQLite stores NaN as NULL, and a reported value is never null: NULL reads back as NaN.
    if value is None or value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _query(request, serializer_class) -> dict:
    """Query parameters through a serializer: a bad one is a 400 naming it."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ArtifactViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ArtifactSerializer
    verbs = {
        "retrieve": "task.read",
        "download": "task.read",
        "upload": "task.outputs",
        "content": "task.outputs",
    }

    def get_queryset(self):
        return access.visible_artifacts(self.request.user, self.request.auth)

    @extend_schema(
        request={"multipart/form-data": {"type": "object"}}, responses=s.ArtifactSerializer
    )
    @action(detail=True, methods=["put", "post"], parser_classes=[MultiPartParser])
    def upload(self, request, pk=None):
        artifact = self.get_object()
        # Set before the body is touched; no more bytes than were declared are read.
        request._request.upload_handlers = [
            HashingUploadHandler(request._request, max_bytes=artifact.size)
        ]
        uploaded = request.FILES.get("file")
        if uploaded is None:
            return Response(
                {"error": "invalid", "detail": "multipart field 'file' is required"}, status=400
            )
        artifact = artifacts.store_artifact_content(artifact, uploaded)
        return Response(s.ArtifactSerializer(artifact).data)

    @extend_schema(
        request={"application/octet-stream": {"type": "string", "format": "binary"}},
        responses=s.ArtifactSerializer,
    )
    @action(detail=True, methods=["put"], parser_classes=[])
    def content(self, request, pk=None):
        """The artifact's bytes as the raw request body (no multipart): stored in one pass.

        With `X-Content-SHA256: trailing` the body ends with the SHA-256 of the bytes before
        it (32 bytes, binary), so the artifact may be declared without one.
        """
        artifact = self.get_object()
        django_request = request._request
        # webapp/serve.py hands over a body already spooled under the storage root.
        raw = django_request.META.get("wsgi.input")
        body = raw if isinstance(raw, SpooledBody) else django_request
        length = _content_length(django_request)
        trailing = django_request.headers.get("X-Content-SHA256", "").lower() == TRAILING_SHA256
        artifact = artifacts.receive_artifact_body(artifact, body, length, trailing)
        return Response(s.ArtifactSerializer(artifact).data)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        artifact = self.get_object()
        return _artifact_file_response(artifact)


def _content_length(request) -> int | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return length if length >= 0 else None


# Blocks of a file response where the WSGI server iterates it (waitress sends the open file
# itself, see webapp/serve.py): larger than Django's 4 KiB, small enough to reuse memory.
DOWNLOAD_BLOCK = 1 << 20


def _artifact_file_response(artifact):
    response = FileResponse(
        artifacts.open_artifact(artifact),
        as_attachment=True,
        filename=artifact.filename,
        content_type=artifact.content_type or "application/octet-stream",
    )
    response.block_size = DOWNLOAD_BLOCK
    response["X-Content-SHA256"] = artifact.sha256
    response["Content-Length"] = str(artifact.size)
    return response
