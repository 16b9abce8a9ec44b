"""Idempotency-Key for the API calls that create or move things.

The SDK sends one key per call and repeats it on every retry of that call. When the first
attempt committed but its answer was lost, the retry gets the stored answer instead of a
second clone, or a 409 for an enqueue that did happen. The record is written in the same
transaction as the call's own writes, so a call that rolled back or crashed leaves nothing to
replay and its retry simply runs.

Only the endpoints below take part: the ones a worker calls while running a step are
idempotent by their own ids (claim ids, batch ids), and some answers carry fresh secrets,
which are never stored.
"""

import hashlib
import re
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.utils import timezone

from .models import IdempotentRequest

HEADER = "Idempotency-Key"
IDEMPOTENT_ROUTES = {
    "api:project-list",
    "api:task-list",
    "api:task-clone",
    "api:task-enqueue",
    "api:task-dequeue",
    "api:task-abort",
    "api:task-reset",
    "api:pipeline-list",
    "api:pipeline-stop",
    "api:pipeline-launch",
    "api:pipeline-skip",
    "api:pipeline-rerun",
    "api:schedule-list",
    "api:trigger-list",
}
KEEP_FOR = timedelta(hours=24)
_VALID_KEY = re.compile(r"^[A-Za-z0-9_.:-]{8,128}$")


def _route(path: str) -> str:
    try:
        match = resolve(path)
    except Resolver404:
        return ""
    return match.view_name


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get(HEADER)
        credentials = request.headers.get("Authorization", "")
        if request.method != "POST" or not key or not credentials:
            return self.get_response(request)
        if _route(request.path_info) not in IDEMPOTENT_ROUTES:
            return self.get_response(request)
        if not _VALID_KEY.match(key):
            return JsonResponse(
                {"error": "invalid", "detail": f"{HEADER} must be 8-128 letters, digits or _.:-"},
                status=400,
            )
        ident = hashlib.sha256(f"{credentials}\0{key}".encode()).hexdigest()
        fingerprint = hashlib.sha256(
            b"\0".join([request.method.encode(), request.path_info.encode(), request.body])
        ).hexdigest()
        try:
            return self._once(request, ident, fingerprint)
        except DatabaseError:
            # The database is unreachable: answer as the call itself would (503, JSON).
            return self.get_response(request)

    def _once(self, request, ident: str, fingerprint: str):
        with transaction.atomic():
            try:
                with transaction.atomic():
                    IdempotentRequest.objects.create(
                        key=ident, fingerprint=fingerprint, status_code=0, body=b""
                    )
            except IntegrityError:
                # Committed by an earlier attempt (a concurrent one waited for its commit).
                return _replay(IdempotentRequest.objects.get(pk=ident), fingerprint)
            response = self.get_response(request)
            if response.status_code >= 500 or getattr(response, "streaming", False):
                transaction.set_rollback(True)
                return response
            IdempotentRequest.objects.filter(pk=ident).update(
                status_code=response.status_code,
                content_type=response.get("Content-Type", "")[:100],
                body=response.content,
            )
            return response


def _replay(stored: IdempotentRequest, fingerprint: str) -> HttpResponse:
    if stored.fingerprint != fingerprint:
        return JsonResponse(
            {
                "error": "conflict",
                "detail": f"this {HEADER} was already used for a different request",
            },
            status=422,
        )
    response = HttpResponse(
        bytes(stored.body), status=stored.status_code, content_type=stored.content_type or None
    )
    response["Idempotent-Replayed"] = "true"
    return response


def forget_old_requests(now=None) -> int:
    """Drop answers older than KEEP_FOR; a retry comes within seconds, not days."""
    cutoff = (now or timezone.now()) - KEEP_FOR
    return IdempotentRequest.objects.filter(created__lt=cutoff).delete()[0]
