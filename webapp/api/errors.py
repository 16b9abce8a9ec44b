"""Every API error is JSON: {"error": code, "detail": message, ...details}."""

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from webapp.core.errors import DomainError
from webapp.core.storage import UploadTooLarge

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait before retrying while the database cannot be reached.
DATABASE_RETRY_AFTER = 2


def exception_handler(exc, context):
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is down, restarting, unreachable or (SQLite) locked past the busy
        # timeout: a transient condition the SDK and workers retry on, not a server bug.
        logger.warning("database unavailable: %s", exc, exc_info=True)
        set_rollback()
        return Response(
            {"error": "database_unavailable", "detail": "the database cannot be reached; retry"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )
    if isinstance(exc, DataError):
        # SQLSTATE class 22 (PostgreSQL): a value the database refused, too long, out of
        # range or holding NUL, that a check before it missed. The caller's input, not ours.
        logger.warning("value refused by the database: %s", exc)
        set_rollback()
        return Response(
            {"error": "invalid", "detail": f"invalid value: {exc}"[:500]},
            status=status.HTTP_400_BAD_REQUEST,
        )
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


# ---------------------------------------------------------------- errors outside any view

API_PREFIX = "/api/"


def not_found(request, exception=None):
    """Django's 404 for a URL no route matched: JSON under /api/, the HTML page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            {"error": "not_found", "detail": f"no API endpoint at {request.path}"}, status=404
        )
    return page_not_found(request, exception)


def server_error(request):
    """Django's 500 for an error no view handled: JSON under /api/, the HTML page elsewhere."""
    from django.http import JsonResponse
    from django.views.defaults import server_error as html_server_error

    if request.path.startswith(API_PREFIX):
        return JsonResponse(
            {"error": "server_error", "detail": "internal server error"}, status=500
        )
    return html_server_error(request)
