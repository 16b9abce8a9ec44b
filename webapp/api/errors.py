"""Every API error is JSON: {"error": code, "detail": message, ...details}."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from webapp.core.errors import DomainError
from webapp.core.storage import UploadTooLarge


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        body = {"error": exc.code, "detail": exc.message, **exc.details}
        return Response(body, status=exc.status_code)
    if isinstance(exc, UploadTooLarge):
        return Response(
            {"error": "too_large", "detail": "upload exceeds ARTIFACT_MAX_BYTES"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(exc.messages)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        code = getattr(data["detail"], "code", "error")
        response.data = {"error": code, "detail": str(data["detail"])}
    else:
        response.data = {"error": "invalid", "detail": "invalid input", "fields": data}
    return response
