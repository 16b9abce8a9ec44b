"""ClearML's impersonation: a staff user's key acting as another user of this server.

clearml-server lets its admins send `X-ClearML-Impersonate-As: <user id>` on any call (its
web server and tests create and act for users that way). Here only a kind the permission
table allows (`user.impersonate`: staff users' own keys) may, and the call then has the
impersonated user's rights and no key: it sees and changes what that user would, and
nothing of the key's own (a key's task or worker rights are not carried over).
"""

from django.contrib.auth import get_user_model

from webapp.core import policy

from .envelope import ApiError

HEADERS = (
    "X-ClearML-Impersonate-As",
    "X-Trains-Impersonate-As",
    "X-ClearML-Act-As",
    "X-Trains-Act-As",
)


def acting_as(request, user, key):
    """(user, key) the call acts as: the caller's own, or the user it impersonates."""
    wanted = [request.headers.get(h) for h in HEADERS if request.headers.get(h)]
    if not wanted:
        return user, key
    if len(set(wanted)) > 1:
        raise ApiError(400, "only one impersonation header is allowed", 0)
    try:
        policy.rule_for("user.impersonate", user, key)
    except policy.Forbidden as error:
        raise ApiError(403, f"impersonation not allowed: {error.message}", 20) from error
    target_id = str(wanted[0]).strip()
    target = None
    if target_id.isdigit() and len(target_id) < 19:
        target = get_user_model().objects.filter(pk=int(target_id), is_active=True).first()
    if target is None:
        raise ApiError(400, f"impersonation error: unknown user {target_id[:64]}", 0)
    if target.is_superuser and not user.is_superuser:
        raise ApiError(403, "impersonation not allowed: only a superuser acts as one", 20)
    return target, None
