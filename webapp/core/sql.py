"""Every statement the server writes out by hand, for the queries that every claim, enqueue,
report and API request runs: the ORM spends far longer building them (about 0.5 ms each)
than the database takes to run them (tens of microseconds).

Only names taken from the models go into the text, quoted by the database backend; every
value is a parameter. A statement's text is built once per process.
"""

import functools

from django.apps import apps
from django.db import connection, models


class Statement:
    """A statement written out with {placeholders}: each table placeholder is filled with a
    model's table, every other one with the column of that name (or, given as a pair
    (placeholder, name), of that name)."""

    def __init__(self, template: str, tables: dict, columns: tuple = ()):
        self.template = template
        self.tables = tables
        self.columns = columns

    @functools.cached_property
    def text(self) -> str:
        quote = connection.ops.quote_name
        names = {
            placeholder: quote(_model(model)._meta.db_table)
            for placeholder, model in self.tables.items()
        }
        for column in self.columns:
            placeholder, name = column if isinstance(column, tuple) else (column, column)
            names[placeholder] = quote(name)
        return self.template.format(**names)


def _model(model):
    return apps.get_model(model) if isinstance(model, str) else model


# ---------------------------------------------------------------- UPDATE of chosen fields


def update(model, fields: dict, where: dict, *, among=None, increment=()) -> tuple[str, list]:
    """`UPDATE model SET fields WHERE where [AND among[0] IN among[1]]`, with `increment`
    columns counted up by one: the text and its values. Field values are what the model
    holds (a related row or its id, an aware datetime, a dict for a JSON field)."""
    among_name, among_values = among if among else (None, ())
    text = update_text(
        model, tuple(fields), tuple(where), among_name, len(among_values), tuple(increment)
    )
    values = [*prepare(model, fields), *prepare(model, where), *among_values]
    return text, values


@functools.cache
def update_text(
    model,
    assign: tuple,
    where: tuple,
    among: str | None = None,
    among_count: int = 0,
    increment: tuple = (),
) -> str:
    quote, meta = connection.ops.quote_name, model._meta
    sets = [f"{quote(meta.get_field(name).column)} = %s" for name in assign]
    sets += [
        f"{quote(meta.get_field(n).column)} = {quote(meta.get_field(n).column)} + 1"
        for n in increment
    ]
    conditions = [f"{quote(_column(meta, name))} = %s" for name in where]
    if among:
        marks = ", ".join(["%s"] * among_count)
        conditions.append(f"{quote(meta.get_field(among).column)} IN ({marks})")
    return "UPDATE {} SET {} WHERE {}".format(  # noqa: S608 - names from the model only
        quote(meta.db_table), ", ".join(sets), " AND ".join(conditions)
    )


def prepare(model, values: dict) -> list:
    """The database values of model fields, as the ORM would send them."""
    meta = model._meta
    prepared = []
    for name, value in values.items():
        field = meta.pk if name in ("pk", "id") else meta.get_field(name)
        if isinstance(value, models.Model):
            value = value.pk
        prepared.append(field.get_db_prep_save(value, connection))
    return prepared


def _column(meta, name: str) -> str:
    return meta.pk.column if name in ("pk", "id") else meta.get_field(name).column


def row_by(model, field: str) -> str:
    """`SELECT * FROM model WHERE field = %s`, for Manager.raw()."""
    column = _column(model._meta, field)
    return _row_by(model._meta.db_table, column)


@functools.cache
def _row_by(table: str, column: str) -> str:
    quote = connection.ops.quote_name
    return f"SELECT * FROM {quote(table)} WHERE {quote(column)} = %s"  # noqa: S608


# ---------------------------------------------------------------- rows of two models at once


@functools.cache
def joined_text(model, other, link: str, where: str) -> str:
    """`SELECT` every column of `model` and of `other` (its row that `model.link` points
    to) `WHERE model.where = %s`: one round trip instead of two; `instances()` splits it."""
    quote = connection.ops.quote_name
    meta, other_meta = model._meta, other._meta
    columns = [f"a.{quote(f.column)}" for f in meta.concrete_fields]
    columns += [f"b.{quote(f.column)}" for f in other_meta.concrete_fields]
    return (
        f"SELECT {', '.join(columns)} FROM {quote(meta.db_table)} a"  # noqa: S608
        f" INNER JOIN {quote(other_meta.db_table)} b"
        f" ON b.{quote(other_meta.pk.column)} = a.{quote(meta.get_field(link).column)}"
        f" WHERE a.{quote(_column(meta, where))} = %s"
    )


@functools.cache
def _converters(model) -> list:
    """Per concrete field, the expression and converters the ORM would apply to its value."""
    result = []
    for field in model._meta.concrete_fields:
        expression = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(expression)
        result.append((expression, converters + expression.get_db_converters(connection)))
    return result


def instances(row, *models_in_order) -> list:
    """The model instances of a row from `joined_text`, values converted as the ORM does."""
    found, start = [], 0
    for model in models_in_order:
        fields = model._meta.concrete_fields
        values = []
        for value, (expression, converters) in zip(
            row[start : start + len(fields)], _converters(model), strict=True
        ):
            for converter in converters:
                value = converter(value, expression, connection)
            values.append(value)
        found.append(model.from_db(connection.alias, [f.attname for f in fields], values))
        start += len(fields)
    return found


# ---------------------------------------------------------------- named statements

# A claimed task leaves its queue (status.change).
LEAVE_QUEUE = Statement(
    "DELETE FROM {entry} WHERE {task_id} = %(task)s", {"entry": "core.QueueEntry"}, ("task_id",)
)

# What a broker message claims (execution.claim_turn): the tasks waiting in the queue of the
# message's task, in the queue's order, with the task this very claim (its answer lost,
# now retried) already took, if any.
QUEUE_TURN = Statement(
    """
    SELECT entry.{task_id}, waiting.{attempt}, (
        SELECT mine.{id} FROM {task} mine
        WHERE mine.{status} = %(running)s AND mine.{worker} = %(worker)s
            AND mine.{status_reason} = %(reason)s
        LIMIT 1
    )
    FROM {entry} entry INNER JOIN {task} waiting ON entry.{task_id} = waiting.{id}
    WHERE entry.{queue_id} = (
            SELECT message.{queue_id} FROM {task} message WHERE message.{id} = %(task)s
        )
        AND waiting.{status} = %(queued)s
    ORDER BY entry.{position}, entry.{added}, entry.{id}
    LIMIT %(limit)s
    """,
    {"task": "core.Task", "entry": "core.QueueEntry"},
    (
        *("id", "attempt", "status", "status_reason", "worker", "queue_id"),
        *("task_id", "position", "added"),
    ),
)

# The tasks waiting in one queue, in its order (what a polling ClearML agent claims).
QUEUE_WAITING = Statement(
    """
    SELECT entry.{task_id}, waiting.{attempt}
    FROM {entry} entry INNER JOIN {task} waiting ON entry.{task_id} = waiting.{id}
    WHERE entry.{queue_id} = %(queue)s AND waiting.{status} = %(queued)s
    ORDER BY entry.{position}, entry.{added}, entry.{id}
    LIMIT %(limit)s
    """,
    {"task": "core.Task", "entry": "core.QueueEntry"},
    ("id", "attempt", "status", "queue_id", "task_id", "position", "added"),
)

# The pipeline runs the engine drives that a task is a step of (every claim and report of
# a task asks this, nearly always of a task in no run).
RUNS_OF_TASK = Statement(
    """
    SELECT node.{run_id} FROM {node} node INNER JOIN {run} run ON node.{run_id} = run.{id}
    WHERE node.{task_id} = %(task)s AND run.{driver} <> %(mirrored)s
    """,
    {"node": "core.PipelineNode", "run": "core.PipelineRun"},
    ("id", "run_id", "task_id", "driver"),
)

# A claimed step's node shown running, while a refresh of its run's plot is already due
# (which will show the change): then this one statement is the whole event.
MARK_NODE_RUNNING_WHILE_PLOT_DUE = Statement(
    """
    UPDATE {node} SET {status} = %(running)s, {updated} = %(updated)s,
        {message} = (SELECT {status_reason} FROM {task} WHERE {id} = %(task)s)
    WHERE {run_id} = %(run)s AND {task_id} = %(task)s AND {status} = %(queued)s
        AND EXISTS (SELECT 1 FROM {task} WHERE {id} = %(task)s AND {status} = %(task_running)s)
        AND EXISTS (
            SELECT 1 FROM {run} WHERE {id} = %(run)s AND {status} = %(run_running)s
                AND {driver} <> %(mirrored)s AND {plot_due} > %(due_since)s
        )
    """,
    {"node": "core.PipelineNode", "task": "core.Task", "run": "core.PipelineRun"},
    (
        *("id", "status", "status_reason", "updated", "message"),
        *("run_id", "task_id", "driver", "plot_due"),
    ),
)

# Scalar points inserted or updated by (task, title, series, iteration), run with
# executemany (SQLite >= 3.24 and PostgreSQL): bulk_create's per-row SQL compilation cost
# more than storing the rows.
UPSERT_SCALARS = Statement(
    """
    INSERT INTO {scalar} ({task_id}, {title}, {series}, {iteration}, {value}, {timestamp}, {seq})
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT ({task_id}, {title}, {series}, {iteration})
    DO UPDATE SET {value} = EXCLUDED.{value}, {timestamp} = EXCLUDED.{timestamp},
        {seq} = EXCLUDED.{seq}
    """,
    {"scalar": "core.Scalar"},
    ("task_id", "title", "series", "iteration", "value", "timestamp", "seq"),
)


# ---------------------------------------------------------------- scalar chart buckets

UPSERT_SCALAR_BUCKETS = Statement(
    """
    INSERT INTO {bucket} ({series_id}, {index}, {count},
        {first_iteration}, {first_value}, {first_time},
        {min_iteration}, {min_value}, {min_time},
        {max_iteration}, {max_value}, {max_time},
        {last_iteration}, {last_value}, {last_time})
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT ({series_id}, {index}) DO UPDATE SET
        {count} = EXCLUDED.{count},
        {first_iteration} = EXCLUDED.{first_iteration},
        {first_value} = EXCLUDED.{first_value},
        {first_time} = EXCLUDED.{first_time},
        {min_iteration} = EXCLUDED.{min_iteration},
        {min_value} = EXCLUDED.{min_value},
        {min_time} = EXCLUDED.{min_time},
        {max_iteration} = EXCLUDED.{max_iteration},
        {max_value} = EXCLUDED.{max_value},
        {max_time} = EXCLUDED.{max_time},
        {last_iteration} = EXCLUDED.{last_iteration},
        {last_value} = EXCLUDED.{last_value},
        {last_time} = EXCLUDED.{last_time}
    """,
    {"bucket": "core.ScalarBucket"},
    (
        "series_id",
        "index",
        "count",
        "first_iteration",
        "first_value",
        "first_time",
        "min_iteration",
        "min_value",
        "min_time",
        "max_iteration",
        "max_value",
        "max_time",
        "last_iteration",
        "last_value",
        "last_time",
    ),  # fmt: skip
)


@functools.cache
def bucket_ranges_text(count: int, fields: tuple) -> str:
    """`fields` of the chart buckets of `count` series, each within an index range: values
    are (series id, lowest index, highest index) per series."""
    quote = connection.ops.quote_name
    meta = apps.get_model("core.ScalarBucket")._meta
    series, index = quote(meta.get_field("series").column), quote(meta.get_field("index").column)
    columns = ", ".join([series, index, *(quote(meta.get_field(n).column) for n in fields)])
    ranges = " OR ".join([f"({series} = %s AND {index} BETWEEN %s AND %s)"] * count)
    return f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {ranges}"  # noqa: S608


# ---------------------------------------------------------------- report batches

# A batch id recorded once per task: no row inserted means the batch was stored before.
RECORD_BATCH = Statement(
    """
    INSERT INTO {batch} ({task_id}, {batch_id}, {received}) VALUES (%s, %s, %s)
    ON CONFLICT ({task_id}, {batch_id}) DO NOTHING
    """,
    {"batch": "core.ReceivedBatch"},
    ("task_id", "batch_id", "received"),
)


def record_batch(task_id: str, batch_id: str, now) -> bool:
    """Record a report batch of a task; False when it was recorded before (inside the
    caller's transaction, so a batch that fails to store is not recorded)."""
    if connection.vendor not in ("sqlite", "postgresql"):
        from .models import ReceivedBatch

        _, created = ReceivedBatch.objects.get_or_create(task_id=task_id, batch_id=batch_id)
        return created
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(RECORD_BATCH.text, [task_id, batch_id, stamp])
        return cursor.rowcount > 0


def batch_recorded(task_id: str, batch_id: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_batch_recorded_text(), [task_id, batch_id])
        return cursor.fetchone() is not None


@functools.cache
def _batch_recorded_text() -> str:
    quote = connection.ops.quote_name
    meta = apps.get_model("core.ReceivedBatch")._meta
    task, batch = meta.get_field("task").column, meta.get_field("batch_id").column
    return (
        f"SELECT 1 FROM {quote(meta.db_table)} WHERE {quote(task)} = %s"  # noqa: S608
        f" AND {quote(batch)} = %s"
    )


def highest_seq(model, task_id: str) -> int | None:
    """The highest `seq` of a task's rows of `model` (its (task, seq) index answers it)."""
    with connection.cursor() as cursor:
        cursor.execute(_highest_seq_text(model), [task_id])
        row = cursor.fetchone()
    return row[0] if row else None


@functools.cache
def _highest_seq_text(model) -> str:
    quote, meta = connection.ops.quote_name, model._meta
    return (
        f"SELECT MAX({quote(meta.get_field('seq').column)}) FROM {quote(meta.db_table)}"  # noqa: S608
        f" WHERE {quote(meta.get_field('task').column)} = %s"
    )


def lock_task(task_id: str) -> None:
    """Hold the task's row until the transaction ends (PostgreSQL; SQLite's writer lock
    already orders its transactions, as Django's select_for_update does nothing there)."""
    if connection.vendor == "sqlite":
        return
    with connection.cursor() as cursor:
        cursor.execute(_lock_task_text(), [task_id])


@functools.cache
def _lock_task_text() -> str:
    quote, meta = connection.ops.quote_name, apps.get_model("core.Task")._meta
    return f"SELECT 1 FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = %s FOR UPDATE"  # noqa: S608
