"""HS256 JSON Web Tokens, just enough for ClearML's `auth.login`.

The SDK decodes the token without checking its signature and reads `api_version`,
`server_version`, `feature_set` and `exp` from it; we check the signature on every call.
"""

import base64
import hashlib
import hmac
import json
import time

from django.conf import settings


class InvalidToken(Exception):
    pass


class TokenExpired(InvalidToken):
    """A token we signed, past its `exp`."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signing_key() -> bytes:
    # A key of its own, derived from SECRET_KEY (the install's own secret unless the
    # environment sets one: settings.py), so these tokens sign nothing else of ours.
    return hashlib.sha256(f"clearml-compat:{settings.SECRET_KEY}".encode()).digest()


def encode(claims: dict) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = hmac.new(_signing_key(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def decode(token: str, now: float | None = None) -> dict:
    """The claims of a token we signed that has not expired; InvalidToken otherwise."""
    try:
        header, payload, signature = token.split(".")
        expected = hmac.new(_signing_key(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise InvalidToken("bad signature")
        claims = json.loads(_unb64(payload))
    except (ValueError, TypeError) as error:
        raise InvalidToken("malformed token") from error
    if not isinstance(claims, dict):
        raise InvalidToken("malformed token")
    try:
        expires = float(claims.get("exp", 0))
    except (TypeError, ValueError) as error:
        raise InvalidToken("malformed token") from error
    if expires < (now if now is not None else time.time()):
        raise TokenExpired("token expired")
    return claims
