"""Request bodies are limited to DATA_UPLOAD_MAX_MEMORY_SIZE, except the uploads' own paths.

Django applies that setting only when a body is read through `request.body` or a form, and
DRF's JSON parser reads the stream instead, so a JSON body of any size was parsed and
stored. Here a body over the limit is answered 413 before anything reads it: under waitress
(webapp/serve.py) its bytes are not even kept, only counted, and the client still gets the
answer (a connection reset mid-body could lose it). Artifact bytes, debug samples and the
ClearML file server stream to storage with their own limits (ARTIFACT_MAX_BYTES).
"""

import re

from django.conf import settings
from django.http import JsonResponse

UPLOAD_PATHS = re.compile(
    r"^/api/v1/artifacts/[^/]+/(?:upload|content)/?$"
    r"|^/api/v1/tasks/[^/]+/samples/?$"
    r"|^/clearml-files(?:/|$)"
)
CLEARML_API = "/clearml-api/"


def is_upload_path(path: str) -> bool:
    return bool(UPLOAD_PATHS.match(path or ""))


def body_limit() -> int | None:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def declared_length(meta) -> int:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class RequestBodyLimitMiddleware:
    """413 for a body over the limit on any path that is not an upload."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = body_limit()
        if (
            limit is not None
            and declared_length(request.META) > limit
            and not is_upload_path(request.path_info)
        ):
            return too_large(request.path_info, limit)
        return self.get_response(request)


def too_large(path: str, limit: int):
    detail = f"request body exceeds {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)"
    if path.startswith(CLEARML_API):
        from webapp.compat.envelope import ApiError, respond_error

        name = path[len(CLEARML_API) :].strip("/").rpartition("/")[2]
        return respond_error(name, ApiError(413, detail))
    return JsonResponse({"error": "too_large", "detail": detail}, status=413)


class DiscardedBody:
    """A waitress body buffer that keeps nothing: the bytes of a body refused for its size
    are read off the socket and counted, so the 413 reaches a client still sending."""

    def __init__(self, keep: int = 0, inner=None):
        self.inner = inner  # a chunked body: stored while it fits, dropped once it does not
        self.keep = keep
        self.length = 0

    def append(self, data) -> None:
        self.length += len(data)
        if self.inner is None:
            return
        if self.length <= self.keep:
            self.inner.append(data)
        else:
            self.inner.close()
            self.inner = None

    def __len__(self) -> int:
        return self.length

    def getfile(self):
        if self.inner is not None:
            return self.inner.getfile()
        import io

        return io.BytesIO()

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
