"""R44-R46: each install signs with its own secret; ClearML tokens cannot be forged or outlive
their key; the server refuses the public development key outside DEBUG.

Servers here start as `pipelines up` starts them: no SECRET_KEY in the environment.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

import pytest
import requests

from tests.support import REPO, free_port, start_server
from webapp.settings import DEV_SECRET_KEY

_FINGERPRINT = (
    "import hashlib; from django.conf import settings; "
    "print(hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest())"
)


def _env(data_dir, **extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIPELINES_", "DJANGO_", "DATABASE_URL", "SECRET_KEY", "DEBUG"))
    }
    env.update(
        {
            "PIPELINES_DATA_DIR": str(data_dir),
            "DATABASE_URL": f"sqlite:///{data_dir / 'db.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "PYTHONPATH": str(REPO),
            "CELERY_BROKER_URL": "memory://",
            **extra,
        }
    )
    return env


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _sign(claims: dict, secret: str) -> str:
    """An HS256 token as webapp/compat/jwt.py makes one, with the key derived from `secret`."""
    key = hashlib.sha256(f"clearml-compat:{secret}".encode()).digest()
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _clearml(server, endpoint: str, token: str) -> requests.Response:
    return requests.post(
        f"{server.url}/clearml-api/{endpoint}",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _login(server, api_key: str) -> str:
    _, prefix, secret = api_key.split("_", 2)
    access = f"pk_{prefix}"
    response = requests.post(
        f"{server.url}/clearml-api/auth.login", json={}, auth=(access, secret), timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["token"]


@pytest.fixture(scope="module")
def installs(tmp_path_factory):
    """Two installs, each started like `up` starts it (no SECRET_KEY), tokens 120 s long."""
    servers = []
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("SECRET_KEY", raising=False)
            for name in ("install-a", "install-b"):
                data_dir = tmp_path_factory.mktemp(name)
                servers.append(start_server(data_dir, CLEARML_TOKEN_SECONDS="120"))
        yield servers
    finally:
        for server in servers:
            server.stop()
            server.drop_database()


def _secret(server) -> str:
    return (server.data_dir / "secret_key").read_text().strip()


def test_each_install_has_its_own_private_secret_and_signs_with_it(installs):
    a, b = installs
    for server in installs:
        path = server.data_dir / "secret_key"
        assert path.stat().st_mode & 0o777 == 0o600
        assert len(_secret(server)) >= 50
    assert _secret(a) != _secret(b)
    assert DEV_SECRET_KEY not in (_secret(a), _secret(b))

    # A genuine token, re-signed: the server takes it with its own file's secret only.
    claims = _claims(_login(a, a.api_key))
    assert _clearml(a, "server.info", _sign(claims, _secret(a))).status_code == 200
    for other in (DEV_SECRET_KEY, _secret(b), "x" * 64):
        response = _clearml(a, "server.info", _sign(claims, other))
        assert response.status_code == 401, response.text


def test_a_token_forged_for_the_bootstrap_key_is_refused(installs):
    a, _ = installs
    now = int(time.time())
    forged = {
        "identity": {"company": "pipelines", "user": "1", "role": "admin"},
        "key": 1,  # the bootstrap admin's key, by its row id
        "iat": now,
        "exp": now + 3600,
        "env": "pipelines",
        "api_version": "2.31",
        "server_version": "2.0.0",
        "feature_set": "basic",
    }
    response = _clearml(a, "projects.get_all", _sign(forged, DEV_SECRET_KEY))
    assert response.status_code == 401, response.text
    # even signed with the install's own secret: a row id names no key
    response = _clearml(a, "projects.get_all", _sign(forged, _secret(a)))
    assert response.status_code == 401, response.text
    # The key is named by an id no one can derive from the row, the prefix alone not enough.
    genuine = _claims(_login(a, a.api_key))
    assert genuine["key"] != 1 and not str(genuine["key"]).isdigit()
    prefix = a.api_key.split("_")[1]
    assert genuine["key"].startswith(prefix + ".")
    for guess in (prefix, f"{prefix}.", f"{prefix}.{'0' * 32}"):
        response = _clearml(a, "server.info", _sign({**genuine, "key": guess}, _secret(a)))
        assert response.status_code == 401, response.text


def test_a_token_dies_with_its_key_and_at_its_expiry(installs):
    a, _ = installs
    admin = a.api()
    created = admin.post(f"{a.url}/api/v1/keys/", json={"name": "short-lived"}).json()
    token = _login(a, created["key"])
    claims = _claims(token)
    assert claims["exp"] - claims["iat"] == 120  # CLEARML_TOKEN_SECONDS
    assert _clearml(a, "server.info", token).status_code == 200

    # expired: the same claims, signed by the install itself, a second past their end
    past = {**claims, "iat": claims["iat"] - 300, "exp": int(time.time()) - 1}
    response = _clearml(a, "server.info", _sign(past, _secret(a)))
    assert response.status_code == 401 and "expired" in response.text

    # revoked: its tokens are refused at once, the admin's go on working
    admin_token = _login(a, a.api_key)
    assert admin.delete(f"{a.url}/api/v1/keys/?prefix={created['prefix']}").status_code == 204
    assert _clearml(a, "server.info", token).status_code == 401
    assert _clearml(a, "server.info", admin_token).status_code == 200

    # deleted: likewise, and a new key (a new row) does not answer to the old token
    other = admin.post(f"{a.url}/api/v1/keys/", json={"name": "deleted"}).json()
    other_token = _login(a, other["key"])
    a.manage(
        "shell",
        "-c",
        f"from webapp.core.models import ApiKey; ApiKey.objects.filter(prefix={other['prefix']!r})"
        ".delete()",
    )
    admin.post(f"{a.url}/api/v1/keys/", json={"name": "after"})
    assert _clearml(a, "server.info", other_token).status_code == 401


def test_processes_starting_together_agree_on_one_secret(tmp_path):
    env = _env(tmp_path)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", f"import django; django.setup(); {_FINGERPRINT}"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    fingerprints = set()
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        fingerprints.add(out.strip().splitlines()[-1])
    assert len(fingerprints) == 1
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    secret = (tmp_path / "secret_key").read_text().strip()
    assert fingerprints == {hashlib.sha256(secret.encode()).hexdigest()}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".secret_key")] == []

    # SECRET_KEY from the environment wins, and then no file is needed
    chosen = "c" * 60
    elsewhere = tmp_path / "env-key"
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {_FINGERPRINT}"],
        cwd=REPO,
        env=_env(elsewhere, SECRET_KEY=chosen),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip().splitlines()[-1] == hashlib.sha256(chosen.encode()).hexdigest()
    assert not (elsewhere / "secret_key").exists()


def _refused_start(argv, env, log) -> str:
    """Start a server process that must exit by itself (bounded), non-zero; its output."""
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        code = process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    text = log.read_text()
    assert code != 0, text
    return text


def test_the_server_and_server_worker_refuse_the_development_key_outside_debug(tmp_path):
    env = _env(tmp_path, SECRET_KEY=DEV_SECRET_KEY)
    port = free_port()
    cli = [sys.executable, "-m", "pipelines.launcher.cli"]
    server = _refused_start([*cli, "server", "--port", str(port)], env, tmp_path / "server.log")
    assert "pipelines.E002" in server and "public development secret key" in server
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    worker = _refused_start([*cli, "serverworker"], env, tmp_path / "worker.log")
    assert "pipelines.E002" in worker

    # An install whose own secret cannot be read falls back to it, and is refused the same way
    broken = tmp_path / "broken"
    (broken / "secret_key").mkdir(parents=True)
    text = _refused_start(
        [*cli, "server", "--port", str(free_port())], _env(broken), tmp_path / "broken.log"
    )
    assert "pipelines.E002" in text and str(broken / "secret_key") in text

    # In DEBUG it is a warning: development setups still run
    check = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={**env, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0 and "pipelines.W001" in check.stderr
