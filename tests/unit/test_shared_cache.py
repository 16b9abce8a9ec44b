"""The default cache (webapp/core/cache.py): counters in the database keep their window."""

import pytest
from django.core.cache import cache
from django.db import connection

pytestmark = pytest.mark.django_db


def _expires(key: str):
    raw = cache.make_and_validate_key(key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT expires FROM pipelines_cache WHERE cache_key = %s", [raw])
        return cursor.fetchone()[0]


def test_a_counter_counts_up_and_keeps_the_expiry_it_was_added_with():
    assert cache.add("guesses", 0, timeout=120)
    before = _expires("guesses")
    assert [cache.incr("guesses") for _ in range(3)] == [1, 2, 3]
    assert cache.get("guesses") == 3
    # set() would have moved the expiry to the default 300 s from now; incr keeps it
    assert _expires("guesses") == before


def test_a_counter_that_is_not_there_is_a_value_error_as_django_says():
    with pytest.raises(ValueError):
        cache.incr("never-added")
