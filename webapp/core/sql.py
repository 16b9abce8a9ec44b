"""Statements written out by hand, for the few queries every claim, enqueue and API request
runs: the ORM spends far longer building them (about 0.5 ms each) than the database takes to
run them (tens of microseconds).

Only names taken from the models go into the text, quoted by the database backend; every
value is a parameter.
"""

import functools

from django.db import connection


@functools.cache
def statement(template: str, tables: tuple, columns: tuple) -> str:
    """`template` with its {placeholders} filled: each (placeholder, model) of `tables` by the
    model's table; each column of `columns` by its name, as {name} or, given as a pair
    (placeholder, name), as {placeholder}. Cached per text."""
    quote = connection.ops.quote_name
    names = {placeholder: quote(model._meta.db_table) for placeholder, model in tables}
    for column in columns:
        placeholder, name = column if isinstance(column, tuple) else (column, column)
        names[placeholder] = quote(name)
    return template.format(**names)
