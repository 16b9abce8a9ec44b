"""R40: the production settings pass `manage.py check --deploy --fail-level WARNING`."""

import os
import secrets
import subprocess
import sys

from tests.support import REPO
from webapp.settings import DEV_SECRET_KEY


def _check(tmp_path, **env) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIPELINES_", "SECURE_", "SESSION_", "CSRF_"))
        and k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE")
    }
    base.update({"PIPELINES_DATA_DIR": str(tmp_path), "PYTHONPATH": str(REPO), **env})
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "PIPELINES_ENV": "production",
    "DEBUG": "0",
    "ALLOWED_HOSTS": "pipelines.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://pipelines.example.com",
}


def test_production_env_passes_the_deployment_checklist(tmp_path):
    result = _check(tmp_path, SECRET_KEY=secrets.token_urlsafe(64), **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    # so does the install's own secret, made in the data dir when SECRET_KEY is unset
    own = _check(tmp_path / "own-secret", **PRODUCTION)
    assert own.returncode == 0, own.stdout + own.stderr
    assert (tmp_path / "own-secret" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_the_checklist_fails_on_what_production_must_not_have(tmp_path):
    # the development secret key (an error outside DEBUG, check --deploy or not), and DEBUG on
    dev_key = _check(tmp_path, SECRET_KEY=DEV_SECRET_KEY, **PRODUCTION)
    assert dev_key.returncode != 0
    assert "pipelines.E002" in dev_key.stderr
    debug = _check(tmp_path, SECRET_KEY=secrets.token_urlsafe(64), **{**PRODUCTION, "DEBUG": "1"})
    assert debug.returncode != 0 and "security.W018" in debug.stderr
    # without PIPELINES_ENV=production the HTTPS switches stay off for http://127.0.0.1
    dev = _check(tmp_path, SECRET_KEY=secrets.token_urlsafe(64), DEBUG="0")
    assert dev.returncode != 0
    for check in ("W004", "W008", "W012", "W016"):
        assert f"security.{check}" in dev.stderr, check


def test_production_settings_values(tmp_path):
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_PROXY_SSL_HEADER, "
        "s.SECURE_REDIRECT_EXEMPT, s.X_FRAME_OPTIONS, s.CSRF_TRUSTED_ORIGINS)"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIPELINES_", "SECURE_", "SESSION_", "CSRF_"))
    }
    env.update(
        PRODUCTION,
        PIPELINES_DATA_DIR=str(tmp_path),
        PYTHONPATH=str(REPO),
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == (
        "True True True 31536000 False ('HTTP_X_FORWARDED_PROTO', 'https') ['^healthz$'] DENY "
        "['https://pipelines.example.com']"
    )
