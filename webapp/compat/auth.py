"""Credentials: our API keys as ClearML access/secret key pairs, and the tokens for them.

A key `pk_<prefix>_<secret>` is given to ClearML as access key `pk_<prefix>` and secret key
`<secret>`; `auth.login` (HTTP Basic) joins them again and checks the key like our REST API
does. The token is signed with the install's secret and names its key by an unguessable id
(keys.token_id, never the row's integer id), so revoking or deleting the key ends its tokens
at the next call. Credentials that match nothing count against the client (core/lockout.py):
past the limit its failures are answered 429 instead of 401; its valid keys still work.
"""

import base64
import time

from django.conf import settings

from webapp.core import lockout
from webapp.core.keys import check_api_key, key_for_token_id, token_id
from webapp.core.models import ApiKey

from . import jwt
from .envelope import ApiError

API_VERSION = "2.31"
SERVER_VERSION = "2.0.0"


def split_key(api_key: str) -> tuple[str, str]:
    """`pk_<prefix>_<secret>` -> (access key, secret key)."""
    parts = api_key.split("_", 2)
    if len(parts) != 3 or parts[0] != "pk":
        raise ValueError("not a pipelines API key (pk_<prefix>_<secret>)")
    return f"pk_{parts[1]}", parts[2]


def join_key(access_key: str, secret_key: str) -> str:
    # The whole key given as the access key (secret left empty) is accepted too.
    if access_key.count("_") >= 2 and not secret_key:
        return access_key
    return f"{access_key}_{secret_key}"


def _guess(request) -> None:
    """Count a credential that matched nothing of ours; HTTP 429 once the client is past
    its limit (core/lockout.py)."""
    wait = lockout.refuse_guess(request)
    if wait:
        raise ApiError(
            429,
            f"Too many failed credentials from this address: retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )


def _checked(request, found: tuple[ApiKey | None, bool]) -> ApiKey | None:
    key, genuine = found
    if key is None and not genuine:
        _guess(request)
    return key


def key_from_basic(request) -> ApiKey | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        access, _, secret = base64.b64decode(value.strip()).decode().partition(":")
    except ValueError:
        _guess(request)
        return None
    return _checked(request, check_api_key(join_key(access, secret)))


def issue_token(key: ApiKey, expiration_sec: int | None = None) -> str:
    lifetime = settings.CLEARML_TOKEN_SECONDS
    if expiration_sec:
        lifetime = max(60, min(int(expiration_sec), lifetime))
    now = int(time.time())
    user = key.user
    return jwt.encode(
        {
            "identity": {
                "company": "pipelines",
                "company_name": "pipelines",
                "user": str(user.pk),
                "user_name": user.get_username(),
                "role": "admin" if user.is_staff else "user",
            },
            "key": token_id(key),
            "iat": now,
            "exp": now + lifetime,
            "env": "pipelines",
            # The SDK picks its API schema and features from these claims alone.
            "api_version": API_VERSION,
            "server_version": SERVER_VERSION,
            "feature_set": "basic",
        }
    )


def authenticate(request):
    """(user, ApiKey) for a Bearer token (ours, or a raw API key); HTTP 401 otherwise.

    A 401 status (not only result_code) makes the SDK log in again and retry once.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Unauthorized (missing credentials)", 20)
    if token.startswith("pk_"):
        key = _checked(request, check_api_key(token))
    else:
        try:
            claims = jwt.decode(token)
        except jwt.TokenExpired as error:
            raise ApiError(401, f"Unauthorized ({error})", 21) from error  # ours, not a guess
        except jwt.InvalidToken as error:
            _guess(request)
            raise ApiError(401, f"Unauthorized ({error})", 21) from error
        # Signed by us, so not a guess even when its key is gone (or it predates token ids).
        key, _ = key_for_token_id(claims.get("key"))
    if key is None:
        raise ApiError(401, "Unauthorized (invalid credentials)", 21)
    return key.user, key
