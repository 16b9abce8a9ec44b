import os

import pytest

# Unit tests never reach a broker: publishing is asserted through the outbox fixture.
os.environ.setdefault("CELERY_BROKER_URL", "memory://")

import re  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

_STATUS_WRITER = str(Path(__file__).resolve().parents[1] / "webapp" / "core" / "status.py")
_TASK_STATUS_UPDATE = re.compile(
    r'^\s*UPDATE\s+"core_task"\s+SET\s+(?P<sets>.*?)\s+WHERE', re.IGNORECASE | re.DOTALL
)
_SETS_STATUS = re.compile(r'(^|[\s,])"status"\s*=')


@pytest.fixture(autouse=True)
def only_status_change_writes_task_status(request):
    """Every test that touches the database also checks that each UPDATE setting a task's
    status came from the one writer, webapp/core/status.py (test_server_boundaries.py
    checks the code; this checks what the code does)."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker(
        "django_db"
    ):
        yield
        return
    from django.db import connection

    strays = []

    def watch(execute, sql, params, many, context):
        match = _TASK_STATUS_UPDATE.match(sql)
        if match and _SETS_STATUS.search(match.group("sets")):
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename != _STATUS_WRITER:
                frame = frame.f_back
            if frame is None:
                strays.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        yield
    assert strays == [], f"Task.status written outside core/status.py: {strays}"


@pytest.fixture(autouse=True)
def _fresh_cache(request, django_db_blocker):
    """Each test that may use the database starts with an empty cache: the failed-key
    counters of webapp/core/lockout.py live there (in the database, webapp/core/cache.py),
    and every test client comes from 127.0.0.1."""
    if "django_db_setup" not in request.fixturenames and not request.node.get_closest_marker(
        "django_db"
    ):
        yield
        return
    from django.core.cache import cache

    with django_db_blocker.unblock():
        cache.clear()
    yield
