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


# clearml-server is multi-company; this server is one installation, answered as one company.
COMPANY = {"id": "pipelines", "name": "pipelines"}


def user_doc(user) -> dict:
    return {
        "id": str(user.pk),
        "name": user.get_username(),
        "given_name": getattr(user, "first_name", ""),
        "family_name": getattr(user, "last_name", ""),
        "email": getattr(user, "email", ""),
        "avatar": "",
        "company": COMPANY,
        "role": "admin" if user.is_staff else "user",
        "created": user.date_joined.isoformat() if getattr(user, "date_joined", None) else None,
    }


@endpoint("users.get_current_user", verb="identity.read")
def get_current_user(call):
    return {"user": {**user_doc(call.user), "getting_started": {}}}
