import os

import pytest

# Unit tests never reach a broker: publishing is asserted through the outbox fixture.
os.environ.setdefault("CELERY_BROKER_URL", "memory://")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: the failed-key counters of webapp/core/lockout.py
    live there, and every test client comes from 127.0.0.1."""
    from django.core.cache import cache

    cache.clear()
    yield
