"""auth.create_user, and users.* preferences: ClearML's users as our Django users.

A user made here has no password and is in no team: it signs in nowhere by itself and sees
only its own personal projects until an admin adds it to a team; a staff key acts as it
through the impersonation header (impersonation.py). Its web preferences are set top-level
key by key (a key set to null stays, as null), as clearml-server does.
"""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from webapp.core import limits

from ..envelope import ApiError, bad_request
from ..models import UserPreferences
from ..registry import endpoint


@endpoint("auth.create_user", verb="user.create")
def create_user(call):
    name = limits.text("name", str(call.require("name")).strip(), 150, allow_empty=False)
    email = limits.text("email", str(call.get("email", "")), 254)
    users = get_user_model()
    if users.objects.filter(username=name).exists():
        raise ApiError(400, f"a user named {name!r} already exists", 0)
    try:
        with transaction.atomic():
            user = users(
                username=name,
                email=email,
                first_name=limits.text("given_name", str(call.get("given_name", "")), 150),
                last_name=limits.text("family_name", str(call.get("family_name", "")), 150),
            )
            user.set_unusable_password()
            user.save()
    except IntegrityError as error:
        raise ApiError(400, f"a user named {name!r} already exists", 0) from error
    return {"id": str(user.pk)}


def _preferences(user) -> dict:
    row = UserPreferences.objects.filter(user=user).first()
    return dict(row.preferences) if row else {}


@endpoint("users.get_preferences", verb="user.preferences")
def get_preferences(call):
    return {"preferences": _preferences(call.user)}


def _check_keys(value) -> None:
    """clearml-server's rule for keys at any depth (the body's depth is already bounded)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).startswith("$") or "." in str(key):
                raise bad_request(
                    f"Key {key} is invalid. Keys cannot start with '$' or contain '.'.", 12
                )
            _check_keys(item)
    elif isinstance(value, list):
        for item in value:
            _check_keys(item)


@endpoint("users.set_preferences", verb="user.preferences")
def set_preferences(call):
    changes = call.body.get("preferences")
    if not isinstance(changes, dict):
        raise bad_request("preferences must be an object", subcode=12)
    _check_keys(changes)
    with transaction.atomic():
        row, _ = UserPreferences.objects.select_for_update().get_or_create(user=call.user)
        before = dict(row.preferences or {})
        after = limits.json_object("preferences", {**before, **changes})
        if after == before:
            return {"updated": 0, "fields": {}}
        row.preferences = after
        row.save(update_fields=["preferences"])
    return {"updated": 1, "fields": {"preferences": after}}
