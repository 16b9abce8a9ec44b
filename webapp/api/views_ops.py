"""Queues, workers, API keys and the artifact file URL."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.http import FileResponse, Http404
from django.http import HttpResponseRedirect as redirect_to_url
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.core import access, events, execution, keys, policy
from webapp.core.models import ApiKey, DebugSample, Queue, QueueEntry, Worker
from webapp.core.storage import artifact_storage

from . import serializers as s
from .views import _artifact_file_response


def _alive_since():
    return timezone.now() - timedelta(seconds=max(settings.TASK_LEASE_SECONDS, 15))


class QueueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.QueueSerializer
    verbs = {"list": "queue.read", "retrieve": "queue.read", "entries": "queue.read"}
    lookup_field = "name"
    lookup_value_regex = r"[A-Za-z0-9_.\-]+"

    def get_queryset(self):
        return Queue.objects.annotate(length=Count("entries"))

    def get_serializer_context(self):
        by_queue: dict[str, list[str]] = {}
        for worker in Worker.objects.filter(last_seen__gte=_alive_since()):
            for name in worker.queues:
                by_queue.setdefault(name, []).append(worker.name)
        return {**super().get_serializer_context(), "workers_by_queue": by_queue}

    @extend_schema(responses=s.QueueEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def entries(self, request, name=None):
        """The tasks waiting in this queue that the caller may see, in the order workers
        take them."""
        queue = self.get_object()
        visible = access.visible_tasks(request.user, request.auth)
        rows = (
            QueueEntry.objects.filter(queue=queue, task__in=visible)
            .select_related("task")
            .order_by("position", "added", "pk")[:1000]
        )
        return Response(s.QueueEntrySerializer(rows, many=True).data)


class WorkerViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.WorkerSerializer
    queryset = Worker.objects.all()
    verbs = {"list": "worker.read", "heartbeat": "worker.report", "unregister": "worker.report"}

    def get_serializer_context(self, busy=None):
        # A worker's current task is named only to callers who see that task. `busy`: the
        # task ids in question (default: every worker's), so a beat checks only its own.
        if busy is None:
            busy = Worker.objects.exclude(current_task=None).values("current_task")
        visible = set()
        if not isinstance(busy, list) or busy:
            tasks = access.visible_tasks(self.request.user, self.request.auth)
            visible = set(tasks.filter(pk__in=busy).values_list("pk", flat=True))
        return {
            **super().get_serializer_context(),
            "alive_since": _alive_since(),
            "visible_tasks": visible,
        }

    @extend_schema(request=s.WorkerHeartbeatSerializer, responses=s.WorkerSerializer)
    @action(detail=False, methods=["post"])
    def heartbeat(self, request):
        data = s.WorkerHeartbeatSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        worker = execution.worker_heartbeat(**data.validated_data, ensure_queues=True)
        busy = [worker.current_task_id] if worker.current_task_id else []
        context = self.get_serializer_context(busy)
        return Response(self.get_serializer_class()(worker, context=context).data)

    @extend_schema(request=s.WorkerUnregisterSerializer, responses=None)
    @action(detail=False, methods=["post"])
    def unregister(self, request):
        data = s.WorkerUnregisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        execution.unregister_worker(data.validated_data["name"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """Who the caller is, and which key it used."""

    verbs = {"get": "identity.read"}

    @extend_schema(responses=None)
    def get(self, request):
        key = request.auth if isinstance(request.auth, ApiKey) else None
        return Response(
            {
                "username": request.user.username,
                "is_staff": request.user.is_staff,
                "key_kind": key.kind if key else None,
                "key_task": key.task_id if key else None,
            }
        )


class ApiKeyView(APIView):
    """List, create and revoke the caller's own user keys (worker keys: staff only)."""

    verbs = {"get": "key.manage", "post": "key.manage", "delete": "key.manage"}

    @extend_schema(responses=None)
    def get(self, request):
        rows = ApiKey.objects.filter(user=request.user, kind="user").values(
            "prefix", "name", "created", "last_used", "revoked", "expires"
        )
        return Response(list(rows))

    @extend_schema(request=s.ApiKeyCreateSerializer, responses=None)
    def post(self, request):
        data = s.ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        kind, name, expires_in = (data.validated_data[k] for k in ("kind", "name", "expires_in"))
        if kind == "worker":
            policy.rule_for("key.create_worker", request.user, request.auth)
        expires = None
        if expires_in is not None:
            expires = timezone.now() + timedelta(seconds=expires_in)
        key, secret = keys.create_api_key(request.user, kind=kind, name=name, expires=expires)
        return Response(
            {"prefix": key.prefix, "key": secret, "kind": kind, "expires": key.expires},
            status=201,
        )

    @extend_schema(request=None, responses=None, parameters=[s.ApiKeyDeleteQuerySerializer])
    def delete(self, request):
        query = s.ApiKeyDeleteQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        key = get_object_or_404(ApiKey, user=request.user, prefix=query.validated_data["prefix"])
        keys.revoke_api_key(key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ArtifactFileView(APIView):
    """GET /files/<artifact id>/<filename>: the URL stored on every artifact."""

    verbs = {"get": "task.read"}

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    def get(self, request, artifact_id, filename=""):
        artifact = get_object_or_404(
            access.visible_artifacts(request.user, request.auth), pk=artifact_id
        )
        return _artifact_file_response(artifact)


class DebugSampleFileView(APIView):
    """GET /api/v1/samples/<id>/: the image bytes of a debug sample."""

    verbs = {"get": "task.read"}

    @extend_schema(responses={(200, "image/*"): bytes})
    def get(self, request, sample_id):
        tasks = access.visible_tasks(request.user, request.auth)
        sample = get_object_or_404(DebugSample.objects.filter(task__in=tasks), pk=sample_id)
        if not sample.storage_key:
            if not sample.url:
                raise Http404("this sample is kept as a location this server cannot open")
            return redirect_to_url(sample.url)
        content_type, headers = events.serving(sample.content_type)
        response = FileResponse(
            artifact_storage().open(sample.storage_key, "rb"), content_type=content_type
        )
        for name, value in headers.items():
            response[name] = value
        return response
