"""R47-R49: failed credentials lock out the client that sent them, and nobody else.

Passwords: past the limit, the client's logins are refused before any hashing, the right
password included. API keys: past the limit, the client's failed keys are answered 429
(its valid keys are still served: a key check costs what a refusal does).

The live server listens on 127.0.0.1; each attacker connects from an address of its own on
the loopback network (127.0.0.2, 127.0.0.3, ...), the legitimate user from 127.0.0.1, so
the server sees them as different clients, as it would on a network.
"""

import re
import threading

import pytest
import requests
from django.contrib.auth.hashers import MD5PasswordHasher
from django.test import Client
from requests.adapters import HTTPAdapter

from tests.support import start_server, wait_until

LOGIN_LIMIT = 3
KEY_LIMIT = 4
GARBAGE = "pk_0123456789ab_not-a-key-of-this-server"

_SETUP = """
import json
from django.contrib.auth import get_user_model
from webapp.core import keys
user = get_user_model().objects.create_user("alice", password="alice-password")
revoked, secret = keys.create_api_key(user, name="old")
keys.revoke_api_key(revoked)
print(json.dumps({"alice": keys.create_api_key(user)[1], "revoked": secret}))
"""


class _FromAddress(HTTPAdapter):
    """Connections from a given local address (the server sees it as REMOTE_ADDR)."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, connections, maxsize, block=False, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(connections, maxsize, block, **kwargs)


def client_from(address: str, key: str | None = None) -> requests.Session:
    session = requests.Session()
    session.mount("http://", _FromAddress(address))
    if key:
        session.headers["Authorization"] = f"Bearer {key}"
    return session


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process = start_server(
        tmp_path_factory.mktemp("lockout"),
        LOGIN_FAILURE_LIMIT=str(LOGIN_LIMIT),
        LOGIN_LOCKOUT_SECONDS="600",
        API_KEY_FAILURE_LIMIT=str(KEY_LIMIT),
        API_KEY_LOCKOUT_SECONDS="600",
    )
    import json

    process.extra.update(json.loads(process.manage("shell", "-c", _SETUP).splitlines()[-1]))
    yield process
    process.stop()
    process.drop_database()


def _form_login(session, server, username, password, path="/login/", **headers):
    page = session.get(f"{server.url}{path}", timeout=60)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    data = {"username": username, "password": password, "csrfmiddlewaretoken": token}
    if path.startswith("/admin/"):
        data["next"] = "/admin/"
    return session.post(
        f"{server.url}{path}", data=data, headers=headers, allow_redirects=False, timeout=60
    )


def _clearml_login(session, server, api_key: str) -> requests.Response:
    _, prefix, secret = api_key.split("_", 2)
    return session.post(
        f"{server.url}/clearml-api/auth.login", json={}, auth=(f"pk_{prefix}", secret), timeout=60
    )


def test_failed_logins_lock_out_that_address_while_other_users_log_in(server):
    attacker = client_from("127.0.0.2")
    for _ in range(LOGIN_LIMIT - 1):
        answer = _form_login(attacker, server, "admin", "wrong")
        assert answer.status_code == 200 and "didn't match" in answer.text
    # the failure that reaches the limit is answered with the lockout page, saying why
    answer = _form_login(attacker, server, "admin", "wrong")
    assert answer.status_code == 429
    assert "Too many failed logins from your address" in answer.text
    assert "paused for 10 minutes" in answer.text
    # locked out: even the right password is refused
    assert _form_login(attacker, server, "admin", "admin-password").status_code == 429
    # a header the client writes does not change who the client is
    spoofed = _form_login(
        attacker, server, "admin", "admin-password", **{"X-Forwarded-For": "203.0.113.9"}
    )
    assert spoofed.status_code == 429
    # the admin's login form is the same door
    assert _form_login(
        attacker, server, "admin", "admin-password", "/admin/login/"
    ).status_code == (429)

    # the same account, from another client, logs in; keys keep working
    user = client_from("127.0.0.1")
    answer = _form_login(user, server, "admin", "admin-password")
    assert answer.status_code == 302, answer.text
    assert user.get(f"{server.url}/projects/", timeout=60).status_code == 200
    assert client_from("127.0.0.1", server.api_key).get(f"{server.url}/api/v1/me/").ok


def test_sixteen_login_loops_lock_out_after_the_limit_and_others_are_served(server):
    """The reported attack: 16 concurrent loops of failed logins from one client."""
    answers: list[int] = []
    lock = threading.Lock()

    def loop():
        session = client_from("127.0.0.3")
        for _ in range(3):
            code = _form_login(session, server, "alice", "guess").status_code
            with lock:
                answers.append(code)

    threads = [threading.Thread(target=loop) for _ in range(16)]
    for thread in threads:
        thread.start()
    user = client_from("127.0.0.1", server.extra["alice"])
    served = [user.get(f"{server.url}/api/v1/me/", timeout=60).status_code for _ in range(20)]
    for thread in threads:
        thread.join(120)
    assert served == [200] * 20
    assert _form_login(client_from("127.0.0.1"), server, "alice", "alice-password").status_code == (
        302
    )
    assert len(answers) == 48 and set(answers) <= {200, 429}
    # Tries that were already past the lockout check when the limit was reached still ran:
    # at most one per loop. Every other try was refused before its password was hashed.
    assert answers.count(200) <= LOGIN_LIMIT + 16
    assert answers.count(429) >= 48 - LOGIN_LIMIT - 16
    assert _form_login(client_from("127.0.0.3"), server, "alice", "alice-password").status_code == (
        429
    )


def _bad_key(session, server, number: int = 0) -> requests.Response:
    return session.get(
        f"{server.url}/api/v1/me/", headers={"Authorization": f"Bearer {GARBAGE}{number}"}
    )


def test_failed_api_keys_lock_out_that_address_on_every_door(server):
    attacker = client_from("127.0.0.4")
    for number in range(KEY_LIMIT):
        assert _bad_key(attacker, server, number).status_code == 401
    # past the limit its failures are refused with 429, on every door
    answer = _bad_key(attacker, server)
    assert answer.status_code == 429
    assert answer.json()["error"] == "throttled"
    assert 0 < int(answer.headers["Retry-After"]) <= 600
    assert _clearml_login(attacker, server, GARBAGE).status_code == 429
    forged = {"Authorization": "Bearer aGVhZGVy.cGF5bG9hZA.c2lnbmF0dXJl"}
    answer = attacker.post(f"{server.url}/clearml-api/server.info", json={}, headers=forged)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    files = attacker.get(f"{server.url}/clearml-files/some/object.bin", headers=forged)
    assert files.status_code == 429 and int(files.headers["Retry-After"]) > 0

    # valid credentials are served, from that address too (a NAT, a proxy, localhost)
    assert client_from("127.0.0.4", server.api_key).get(f"{server.url}/api/v1/me/").ok
    answer = _clearml_login(attacker, server, server.api_key)
    assert answer.status_code == 200
    token = {"Authorization": f"Bearer {answer.json()['data']['token']}"}
    assert attacker.post(f"{server.url}/clearml-api/server.info", json={}, headers=token).ok
    # and another client's failures are still its own first ones
    assert _bad_key(client_from("127.0.0.1"), server).status_code == 401


def test_bad_clearml_logins_and_forged_tokens_count_as_failed_keys(server):
    logins = client_from("127.0.0.5")
    for number in range(KEY_LIMIT):
        assert _clearml_login(logins, server, f"{GARBAGE}{number}").status_code == 401
    assert _bad_key(logins, server).status_code == 429

    forger = client_from("127.0.0.6")
    for number in range(KEY_LIMIT):
        answer = forger.post(
            f"{server.url}/clearml-api/server.info",
            json={},
            headers={"Authorization": f"Bearer aGVhZGVy.cGF5bG9hZA.{number}"},
        )
        assert answer.status_code == 401
    assert _clearml_login(forger, server, GARBAGE).status_code == 429


def test_a_revoked_key_is_refused_but_never_counted_as_a_guess(server):
    """Stale credentials (a finished step's key, an old config) are not an attack."""
    stale = client_from("127.0.0.7", server.extra["revoked"])
    for _ in range(KEY_LIMIT * 3):
        assert stale.get(f"{server.url}/api/v1/me/").status_code == 401
    assert _clearml_login(stale, server, server.extra["revoked"]).status_code == 401
    assert _bad_key(stale, server).status_code == 401  # the first guess from there


class CountingHasher(MD5PasswordHasher):
    """A fast hasher that counts how often a password is checked or hashed."""

    algorithm = "counting_md5"
    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


@pytest.mark.django_db
def test_a_locked_out_login_is_refused_before_any_password_is_hashed(settings, django_user_model):
    settings.PASSWORD_HASHERS = ["tests.security.test_lockout.CountingHasher"]
    settings.AXES_FAILURE_LIMIT = LOGIN_LIMIT
    django_user_model.objects.create_user("bob", password="bob-password")
    attacker = Client(REMOTE_ADDR="10.9.8.7")
    for attempt in range(1, LOGIN_LIMIT + 1):
        answer = attacker.post("/login/", {"username": "bob", "password": "x"})
        assert answer.status_code == (429 if attempt == LOGIN_LIMIT else 200)
    hashed = CountingHasher.calls
    assert hashed >= LOGIN_LIMIT
    for username, password in (("bob", "bob-password"), ("bob", "y"), ("nobody", "z")):
        answer = attacker.post("/login/", {"username": username, "password": password})
        assert answer.status_code == 429
    assert CountingHasher.calls == hashed
    other = Client(REMOTE_ADDR="10.9.8.8")
    assert other.post("/login/", {"username": "bob", "password": "bob-password"}).status_code == 302
    assert CountingHasher.calls == hashed + 1


@pytest.mark.django_db
def test_a_key_lockout_ends_with_its_window(settings, django_user_model):
    from webapp.core import keys

    settings.API_KEY_FAILURE_LIMIT = 2
    settings.API_KEY_LOCKOUT_SECONDS = 1
    _, secret = keys.create_api_key(django_user_model.objects.create_user("carl"))
    client = Client(REMOTE_ADDR="10.9.8.9")

    def bad():
        return client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {GARBAGE}").status_code

    assert [bad(), bad(), bad()] == [401, 401, 429]
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    # refused tries are not counted: once the window ends, a failure is a first one again
    wait_until(lambda: bad() == 401, timeout=10, interval=0.2, message="the window to end")


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(settings, django_user_model):
    """TRUSTED_PROXY_COUNT=1: the address our proxy appended, never what the client wrote."""
    settings.TRUSTED_PROXY_COUNT = 1
    settings.AXES_FAILURE_LIMIT = LOGIN_LIMIT
    django_user_model.objects.create_user("dora", password="dora-password")
    proxy = Client(REMOTE_ADDR="10.0.0.1")  # every request arrives from the proxy

    def login(forwarded: str, password: str) -> int:
        data = {"username": "dora", "password": password}
        return proxy.post("/login/", data, HTTP_X_FORWARDED_FOR=forwarded).status_code

    # the attacker rotates what it writes itself; the proxy appends its real address
    answers = [login(f"203.0.113.{n}, 198.51.100.7", "guess") for n in range(LOGIN_LIMIT + 2)]
    assert answers == [200] * (LOGIN_LIMIT - 1) + [429] * 3
    assert login("198.51.100.8", "dora-password") == 302


@pytest.mark.django_db
def test_a_token_we_signed_is_never_a_guess_even_for_a_gone_key(settings):
    """A token from before token ids (or for a deleted key) is stale, not forged: 401."""
    import time

    from webapp.compat import jwt

    settings.API_KEY_FAILURE_LIMIT = 2
    stale = jwt.encode({"key": 1, "exp": time.time() + 60})
    client = Client(REMOTE_ADDR="10.9.8.10")
    answers = [
        client.post(
            "/clearml-api/server.info",
            "{}",
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {stale}",
        ).status_code
        for _ in range(5)
    ]
    assert answers == [401] * 5


@pytest.mark.django_db
def test_a_login_lockout_ends_after_its_cool_off(settings, django_user_model):
    """Each try during the lockout starts the wait again, so the poll is slower than it."""
    from datetime import timedelta

    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    django_user_model.objects.create_user("erin", password="erin-password")
    client = Client(REMOTE_ADDR="10.9.8.11")

    def login(password: str) -> int:
        return client.post("/login/", {"username": "erin", "password": password}).status_code

    assert [login("x"), login("y"), login("erin-password")] == [200, 429, 429]
    wait_until(
        lambda: login("erin-password") == 302,
        timeout=20,
        interval=1.5,
        message="the lockout to end",
    )
