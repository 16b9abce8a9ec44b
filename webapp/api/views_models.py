"""Models: a task's output models (declared, then their weights uploaded) and the models it
used; the list of every model the caller may see."""

from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from webapp.core import access, trained_models
from webapp.core.storage import SpooledBody

from . import serializers as s

# Blocks of a download where the WSGI server iterates the file itself.
DOWNLOAD_BLOCK = 1 << 20


class ModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ModelSerializer
    # A model is judged on the task that made it (webapp/core/policy.py).
    verbs = {
        "list": "task.read",
        "retrieve": "task.read",
        "download": "task.read",
        "content": "task.outputs",
    }

    def get_queryset(self):
        models = access.visible_models(self.request.user, self.request.auth).select_related(
            "project", "task"
        )
        q = self.request.query_params
        if q.get("project_name"):
            models = models.filter(project__name=q["project_name"])
        if q.get("name"):
            models = models.filter(name=q["name"])
        if q.get("task"):
            models = models.filter(task_id=q["task"])
        if q.get("framework"):
            models = models.filter(framework=q["framework"])
        if q.get("tag"):
            models = models.filter(tags__icontains=f'"{q["tag"]}"')
        if q.get("ready") in ("1", "true"):
            models = models.filter(state="ready")
        return models.order_by("-created")

    @extend_schema(
        request={"application/octet-stream": {"type": "string", "format": "binary"}},
        responses=s.ModelSerializer,
    )
    @action(detail=True, methods=["put"], parser_classes=[])
    def content(self, request, pk=None):
        """The weights as the raw body, followed by their SHA-256 (32 bytes)."""
        model = self.get_object()
        django_request = request._request
        raw = django_request.META.get("wsgi.input")
        body = raw if isinstance(raw, SpooledBody) else django_request
        try:
            length = int(django_request.META.get("CONTENT_LENGTH") or "")
        except ValueError:
            length = None
        model = trained_models.receive_model_body(model, body, length)
        return Response(s.ModelSerializer(model).data)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        model = self.get_object()
        response = FileResponse(
            trained_models.open_model(model),
            as_attachment=True,
            filename=model.filename,
            content_type="application/octet-stream",
        )
        response.block_size = DOWNLOAD_BLOCK
        response["X-Content-SHA256"] = model.sha256
        response["Content-Length"] = str(model.size)
        return response
