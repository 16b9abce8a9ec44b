"""auth.login (and server.info): tokens for our API keys."""

from ..auth import API_VERSION, SERVER_VERSION, authenticate, issue_token, key_from_basic
from ..envelope import ApiError
from ..registry import endpoint


@endpoint("auth.login", verb="identity.read", public=True)
def login(call):
    key = key_from_basic(call.request)
    if key is None and call.request.headers.get("Authorization", "").lower().startswith("bearer"):
        # CLEARML_AUTH_TOKEN: a still valid token (or a raw key) buys a fresh token.
        _, key = authenticate(call.request)
    if key is None:
        # A 401 with a message: the SDK raises LoginError showing it.
        raise ApiError(401, "Unauthorized (invalid credentials): use an API key of this server", 21)
    return {"token": issue_token(key, call.body.get("expiration_sec"))}


@endpoint("server.info", verb="identity.read")
def server_info(call):
    return {"version": SERVER_VERSION, "api_version": API_VERSION, "build": "pipelines"}
