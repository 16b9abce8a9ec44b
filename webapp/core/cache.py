"""The default cache: Django's database cache, shared by every server process and machine.

The failed-key counters of webapp/core/lockout.py live in the cache, and the web server runs
several processes (WEB_PROCESSES), possibly on several machines: a per-process cache would
give a guesser the limit once per process. The database is the one store every install has
(SQLite under `pipelines up`, PostgreSQL for a fleet), and only failures write to it.

Django's `incr()` on this backend is a read and a write (two concurrent failures can both
read 3 and both write 4) and `set()` resets the expiry; here it is one locked update that
keeps the entry's expiry, so a counter counts every failure and ends with its window.
"""

import base64
import pickle

from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction


class SharedCache(DatabaseCache):
    def incr(self, key, delta=1, version=None):
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        quote = connection.ops.quote_name
        table, cache_key, value_column = quote(self._table), quote("cache_key"), quote("value")
        raw_key = self.make_and_validate_key(key, version=version)
        # SQLite takes the write lock at BEGIN (IMMEDIATE, settings.py); PostgreSQL locks
        # the row. Either way no other incr() reads between this read and this write.
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with transaction.atomic(using=db), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {cache_key} FROM {table} WHERE {cache_key} = %s{lock}",  # noqa: S608
                [raw_key],
            )
            current = self.get(key, self._missing_key, version=version)
            if current is self._missing_key:
                raise ValueError(f"Key '{key}' not found")
            new_value = current + delta
            encoded = base64.b64encode(pickle.dumps(new_value, self.pickle_protocol))
            cursor.execute(
                f"UPDATE {table} SET {value_column} = %s WHERE {cache_key} = %s",  # noqa: S608
                [encoded.decode("latin1"), raw_key],
            )
        return new_value
