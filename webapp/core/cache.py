"""The default cache: Django's database cache, shared by every server process and machine.

The failed-key counters of webapp/core/lockout.py live in the cache, and the web server runs
several processes (WEB_PROCESSES), possibly on several machines: a per-process cache would
give a guesser the limit once per process. The database is the one store every install has
(SQLite under `pipelines up`, PostgreSQL for a fleet), and only failures write to it.

Django's `incr()` on this backend is a read and a write (two concurrent failures can both
read 3 and both write 4) and `set()` resets the expiry; here the read and the write are
under one lock and the entry keeps its expiry, so a counter counts every failure and ends
with its window.
"""

import math

from django.core.cache.backends.db import DatabaseCache
from django.db import connections, models, router, transaction
from django.utils import timezone


class SharedCache(DatabaseCache):
    def incr(self, key, delta=1, version=None):
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        quote = connection.ops.quote_name
        table, cache_key, expires = quote(self._table), quote("cache_key"), quote("expires")
        raw_key = self.make_and_validate_key(key, version=version)
        # SQLite takes the write lock at BEGIN (IMMEDIATE, settings.py); PostgreSQL locks
        # the row. Either way no other incr() reads between this read and this write.
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with transaction.atomic(using=db), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {expires} FROM {table} WHERE {cache_key} = %s{lock}",  # noqa: S608
                [raw_key],
            )
            row = cursor.fetchone()
            current = self.get(key, self._missing_key, version=version)
            if row is None or current is self._missing_key:
                raise ValueError(f"Key '{key}' not found")
            # set() would start a new default timeout: keep the one the entry has.
            left = (_as_datetime(row[0], connection) - timezone.now()).total_seconds()
            self.set(key, current + delta, timeout=max(1, math.ceil(left)), version=version)
        return current + delta


def _as_datetime(value, connection):
    """The expires column as the ORM reads it (SQLite gives text)."""
    expression = models.Expression(output_field=models.DateTimeField())
    converters = connection.ops.get_db_converters(expression)
    for converter in converters + expression.get_db_converters(connection):
        value = converter(value, expression, connection)
    return value
