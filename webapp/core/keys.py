"""API keys: generated once, stored as a sha256, scoped to a user, a worker or one task."""

import hashlib
import secrets

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from . import sql
from .choices import ApiKeyKind
from .models import ApiKey, Task


def create_api_key(
    user, *, kind: str = ApiKeyKind.USER, task: Task | None = None, name="", expires=None
):
    """Returns (ApiKey, secret). The secret is shown once; only its sha256 is stored.

    `expires` (a datetime, or None for no expiry) ends the key like a revocation does.
    """
    prefix = secrets.token_hex(6)
    secret = f"pk_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        prefix=prefix,
        hashed_secret=hash_secret(secret),
        user=user,
        kind=kind,
        task=task,
        name=name,
        expires=expires,
    )
    return key, secret


def hash_secret(secret: str) -> str:
    # Keys carry 256 bits of entropy, so a fast hash is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate_api_key(secret: str) -> ApiKey | None:
    """The active key this secret is, with its (active) user; None otherwise."""
    key, _ = check_api_key(secret)
    return key


def check_api_key(secret: str) -> tuple[ApiKey | None, bool]:
    """(the active key, True) for a good secret; (None, genuine) otherwise, where `genuine`
    says the secret is one of ours that is revoked, expired or of an inactive user (stale
    credentials, not a guess: webapp/core/lockout.py does not count those).

    Every secret is hashed before the lookup, and a wrong one answers like a missing one.
    """
    digest = hash_secret(secret)
    parts = secret.split("_")
    if len(parts) < 3 or parts[0] != "pk":
        return None, False
    key = _key_and_user(parts[1])
    if key is None or not secrets.compare_digest(key.hashed_secret, digest):
        return None, False
    if not key.is_active or not key.user.is_active:
        return None, True
    _touch(key)
    return key, True


def _touch(key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used is None or (now - key.last_used).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used=now)


def token_id(key: ApiKey) -> str:
    """How a token names its key: the key's prefix and a value only its holder can know.

    The second half is derived from the key's stored hash (itself from a 256-bit secret), so
    it is unguessable, needs no column of its own, and a new key never answers to it.
    """
    binding = hashlib.sha256(f"token-id:{key.hashed_secret}".encode()).hexdigest()[:32]
    return f"{key.prefix}.{binding}"


def key_for_token_id(value) -> tuple[ApiKey | None, bool]:
    """(the active key, True) a token_id names; (None, genuine) as check_api_key."""
    prefix, _, binding = str(value).partition(".")
    if not prefix or not binding:
        return None, False
    key = _key_and_user(prefix)
    if key is None or not secrets.compare_digest(token_id(key), f"{prefix}.{binding}"):
        return None, False
    if not key.is_active or not key.user.is_active:
        return None, True
    _touch(key)
    return key, True


def _key_and_user(prefix: str) -> ApiKey | None:
    """The key with this prefix (unique) and its user, read afresh on every request.

    One written-out query for both rows: every API request runs this, and the ORM took
    twice as long to build the joined query as the database takes to run it. The values
    are converted as the ORM converts them.
    """
    user_model = get_user_model()
    with connection.cursor() as cursor:
        cursor.execute(sql.joined_text(ApiKey, user_model, "user", "prefix"), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    key, user = sql.instances(row, ApiKey, user_model)
    key.user = user
    return key


def revoke_api_key(key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked__isnull=True).update(revoked=timezone.now())


def revoke_task_keys(task: Task) -> None:
    ApiKey.objects.filter(task=task, revoked__isnull=True).update(revoked=timezone.now())


def system_user():
    """The owner of keys issued to steps whose task has no creator."""
    user, _ = get_user_model().objects.get_or_create(
        username="pipelines-system", defaults={"is_active": True}
    )
    return user
