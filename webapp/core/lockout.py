"""Failed credentials, counted per client: who is guessing is refused before anything costly.

Passwords (the dashboard's and the admin's login form) are django-axes's: its backend comes
first in AUTHENTICATION_BACKENDS and refuses a locked-out client before the password hasher
runs (a PBKDF2 check is a few hundred CPU-milliseconds; that is what let failed logins slow
everyone). API keys, ClearML tokens and ClearML `auth.login` use the counter below: a key
check costs one indexed lookup and a sha256 whether it succeeds or not, the same as a
refusal, so keys are always checked and only the failures are counted and, past the limit,
answered 429. Both key on `client_address`, so a client guessing from one address never
slows or locks out anyone else.
"""

import math
import time

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.core.cache import cache

_PREFIX = "pipelines:key-guesses"


def client_address(request) -> str:
    """The address a request came from: the socket's peer, or with TRUSTED_PROXY_COUNT = N
    the address the outermost of our N proxies saw (N-th from the right in
    X-Forwarded-For: each proxy appends its peer, so what a client wrote stays on the left)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    count = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote
    return hops[-count] if len(hops) >= count else hops[0]


def _names(request) -> tuple[str, str]:
    """Cache keys of this client's count of guesses and of when its first one came."""
    name = f"{_PREFIX}:{client_address(request)}"
    return f"{name}:count", f"{name}:since"


def refuse_guess(request) -> int:
    """Count one more key from this client that matched no key of ours (a guess, garbage,
    a forged token); returns the seconds it must wait once it is past its limit, else 0.

    Counted over API_KEY_LOCKOUT_SECONDS from the first one. Past the limit the client's
    failures are answered 429 until that window ends and are not counted any more, so a
    client that stops is served again then. Only failures get here: a valid key is served
    whatever its address did, so a guesser sharing an address (a NAT, a proxy, localhost
    under `pipelines up`) locks no worker or user out.
    """
    limit = settings.API_KEY_FAILURE_LIMIT
    if limit <= 0:
        return 0
    window = max(1, settings.API_KEY_LOCKOUT_SECONDS)
    count, since = _names(request)
    if cache.get(count, 0) >= limit:
        started = cache.get(since)
        if started is not None:
            return max(1, math.ceil(started + window - time.time()))
    cache.add(since, time.time(), timeout=window)
    cache.add(count, 0, timeout=window)
    try:
        cache.incr(count)
    except ValueError:  # the window ended between add() and incr()
        cache.set(count, 1, timeout=window)
    return 0


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes's lockout check, first among the backends.

    Logins over HTTP always come with their request; `authenticate()` without one (a shell,
    the test client) has no client to count and goes straight to the next backend.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
