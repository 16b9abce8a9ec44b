"""ClearML's response envelope, for every outcome.

The SDK decides success from `meta.result_code` and retries forever on a body without `meta`
or with a code above 500, so every answer under /clearml-api/ goes through `respond()`, and
the HTTP status always equals `result_code` (capped at 500).
"""

import json
import uuid

from django.http import HttpResponse


class ApiError(Exception):
    """An error answered in the envelope: `code` is both result_code and the HTTP status."""

    def __init__(
        self,
        code: int,
        message: str,
        subcode: int = 0,
        data: dict | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        # Never above 500: the SDK treats 501+ as "try again" and loops forever.
        self.code = min(int(code), 500)
        self.message = message
        self.subcode = subcode
        self.data = data or {}
        self.headers = headers or {}


def bad_request(message: str, subcode: int = 0) -> ApiError:
    return ApiError(400, message, subcode)


def respond(
    endpoint: str,
    data: dict | None,
    *,
    code: int = 200,
    subcode: int = 0,
    message: str = "OK",
    version: str = "",
    error_data: dict | None = None,
) -> HttpResponse:
    code = min(int(code), 500)
    body = {
        "meta": {
            "id": uuid.uuid4().hex,
            "trx": uuid.uuid4().hex,
            "endpoint": {
                "name": endpoint,
                "requested_version": version or None,
                "actual_version": version or "2.31",
            },
            "result_code": code,
            "result_subcode": subcode,
            "result_msg": message,
            "error_stack": None,
            "error_data": error_data or {},
        },
        "data": data if data is not None else {},
    }
    return HttpResponse(json.dumps(body, default=str), status=code, content_type="application/json")


def respond_error(endpoint: str, error: ApiError, version: str = "") -> HttpResponse:
    response = respond(
        endpoint,
        {},
        code=error.code,
        subcode=error.subcode,
        message=error.message,
        version=version,
        error_data=error.data,
    )
    for name, value in error.headers.items():
        response[name] = value
    return response
