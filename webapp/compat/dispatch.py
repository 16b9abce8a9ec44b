"""The one view behind /clearml-api/: parse, authenticate, dispatch, wrap in the envelope.

ClearML clients send GET requests with JSON bodies (and one JSON-lines body), with or
without a `/vX.Y/` prefix; everything under this view is answered in the envelope, errors
included, because anything else sends the SDK into an endless retry loop.
"""

import logging
import re
import time

from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from webapp.core import limits, policy
from webapp.core.errors import Conflict, DomainError, NotFound

from . import legacy_tags
from .auth import authenticate
from .connection import close_after_response
from .envelope import ApiError, respond, respond_error
from .impersonation import acting_as
from .registry import HANDLERS, PUBLIC, VERBS, Call

logger = logging.getLogger("webapp.compat")

# What a handler raises when a body's field is not of the shape it reads (handlers read the
# parsed body directly, as the protocol's fields are many and loosely typed).
BAD_SHAPE = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError)

PATH = re.compile(r"^(?:v(?P<version>\d+\.\d+)/)?(?P<endpoint>[A-Za-z_]+\.[A-Za-z_]+)/?$")


@csrf_exempt
def api_view(request, path: str = "") -> HttpResponse:
    started = time.monotonic()
    close_after_response(request)
    match = PATH.match(path)
    name = match.group("endpoint") if match else path
    version = (match.group("version") or "") if match else ""
    try:
        response = _handle(request, match, name, version)
    except ApiError as error:
        response = respond_error(name, error, version)
    except RequestDataTooBig:
        response = respond_error(name, ApiError(413, "request body too large"), version)
    except NotFound as error:
        response = respond_error(name, ApiError(400, error.message, 101), version)
    except policy.Forbidden as error:
        # clearml-server's 403 "no_write_permission".
        response = respond_error(name, ApiError(403, error.message, 21), version)
    except Conflict as error:
        # ClearML answers an illegal state change with 400 (subcode 110 "invalid status").
        response = respond_error(name, ApiError(400, error.message, 110), version)
    except DomainError as error:
        code = error.status_code if error.status_code <= 500 else 500
        response = respond_error(name, ApiError(code, error.message), version)
    except DataError as error:
        # SQLSTATE class 22: the database refused a value (too long, out of range, NUL).
        logger.info("clearml %s: value refused by the database: %s", name, error)
        response = respond_error(name, ApiError(400, f"invalid value: {error}"[:500]), version)
    except DatabaseError:
        logger.exception("database error in %s", name)
        response = respond_error(name, ApiError(500, "database error"), version)
    except BAD_SHAPE as error:
        # A field of the wrong type or shape (a string where a list goes, a list where an
        # object goes): clearml-server answers its schema validation with a 400 too.
        logger.warning("clearml %s: malformed request: %r", name, error, exc_info=True)
        response = respond_error(
            name,
            ApiError(400, f"malformed request: {type(error).__name__}: {error}"[:500]),
            version,
        )
    except Exception:  # noqa: BLE001 - an unwrapped 500 page would hang the SDK
        logger.exception("unexpected error in %s", name)
        response = respond_error(name, ApiError(500, f"internal error in {name}"), version)
    if response.status_code != 200:
        logger.info("clearml %s -> %s", name, response.status_code)
    logger.debug(
        "clearml %s %s -> %s in %.0f ms",
        request.method,
        name,
        response.status_code,
        (time.monotonic() - started) * 1000,
    )
    return response


def _handle(request, match, name: str, version: str) -> HttpResponse:
    if request.method not in ("GET", "POST", "PUT"):
        raise ApiError(405, f"method {request.method} not allowed")
    handler = HANDLERS.get(name) if match else None
    if handler is None:
        # The same words as clearml-server: clients treat a 404 as "not supported here".
        raise ApiError(404, f"Unable to find endpoint for name {name} and version {version}")
    call = Call(name=name, body={}, request=request, version=version, verb=VERBS[name])
    call.worker = (
        request.headers.get("X-ClearML-Worker") or request.headers.get("X-Trains-Worker") or ""
    )
    _parse_body(request, call)
    if name not in PUBLIC:
        call.user, call.key = acting_as(request, *authenticate(request))
        try:
            call.rule = policy.rule_for(call.verb, call.user, call.key)
        except policy.Forbidden as error:
            # clearml-server's 403 "role_not_allowed": this kind of key never may.
            raise ApiError(403, error.message, 20) from error
    legacy_tags.upgrade_request(call)
    data = legacy_tags.downgrade_response(call, handler(call))
    return respond(name, data, version=version)


def _parse_body(request, call: Call) -> None:
    raw = request.body
    content_type = request.content_type or ""
    if raw.strip():
        text = raw.decode("utf-8", errors="replace")
        # The same limits as the REST API's parser: depth, finite numbers (core/limits.py).
        try:
            if "json-lines" in content_type or "jsonlines" in content_type:
                call.lines = [
                    limits.load_json(line, len(raw)) for line in text.splitlines() if line.strip()
                ]
                return _merge_query(request, call)
            body = limits.load_json(text, len(raw))
        except limits.BodyError as error:
            raise ApiError(400, error.message) from error
        if isinstance(body, list):
            # A JSON array is how some clients send a batch of events.
            call.lines = body
        elif isinstance(body, dict):
            call.body = body
        else:
            raise ApiError(400, "the request body must be a JSON object")
    _merge_query(request, call)


def _merge_query(request, call: Call) -> None:
    # Query parameters (auth.login?expiration_sec=...) fill in what the body lacks.
    for key, value in request.GET.items():
        call.body.setdefault(key, value)
    # Every SDK request carries a junk "method" key; unknown keys are ignored throughout.
    call.body.pop("method", None)
