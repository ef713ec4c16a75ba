"""SQL helpers for the hot paths, and the conversation counters kept per group."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

from conversations.clock import epoch_ms
from conversations.ingest.items import Context
from conversations.models import Conversation


def table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@contextmanager
def blob_cursor(*, numbered: bool = False) -> Iterator:
    """A cursor for statements that carry large byte strings.

    Django binds parameters on the client with psycopg, which writes each bytea out as hex
    text in Python first: for a 30 KB rrweb batch that costs more than the insert itself.
    On PostgreSQL this cursor binds on the server instead, sending bytes as they are; errors
    are still Django's (DataError, IntegrityError, ...). Elsewhere it is Django's cursor.

    `numbered`: the statement's placeholders are PostgreSQL's own ($1, $2, ...), passed
    through as they are. psycopg parses a %s statement in Python on every call, and a
    multi-row insert of a few hundred values is too long for its cache: ~2 ms a statement.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    kind = psycopg.RawCursor if numbered else psycopg.Cursor
    with connection.wrap_database_errors, kind(connection.connection) as cursor:
        yield cursor


def insert(model: type, values: dict, *, unless_taken: str | None = None) -> int | None:
    """Insert one row and return its id, the way the ORM would write each value.

    Used on the hot paths: compiling an ORM insert costs ~1 ms a row here, the SQL ~20 us.
    `unless_taken`: a unique field; if a row already holds this value, nothing is inserted
    and None is returned.
    """
    fields = [model._meta.get_field(name) for name in values]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    marks = ", ".join(["%s"] * len(fields))
    db = connections[DEFAULT_DB_ALIAS]  # the proxy costs a thread-local lookup a value
    params = [
        field.get_db_prep_save(value, db)
        for field, value in zip(fields, values.values(), strict=True)
    ]
    conflict = ""
    if unless_taken:
        column = connection.ops.quote_name(model._meta.get_field(unless_taken).column)
        conflict = f" ON CONFLICT ({column}) DO NOTHING"
    with blob_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table(model)} ({columns}) VALUES ({marks}){conflict} RETURNING id",
            params,
        )
        row = cursor.fetchone()
    return row[0] if row is not None else None


_PLAIN = (int, str, bytes, bool, type(None))


def insert_many(model: type, rows: list[dict], *, key: str) -> list[tuple[int, object]]:
    """Insert rows (all with the same columns) in one statement; return (id, key) pairs.

    The database may return the rows in any order, hence the key to match them by.
    """
    fields = [model._meta.get_field(name) for name in rows[0]]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    numbered = connection.vendor == "postgresql"
    width = len(fields)
    if numbered:
        marks = ", ".join(
            "(" + ", ".join(f"${n * width + i + 1}" for i in range(width)) + ")"
            for n in range(len(rows))
        )
    else:
        marks = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(rows))
    db = connections[DEFAULT_DB_ALIAS]  # the proxy costs a thread-local lookup a value
    # PostgreSQL takes plain values as they are (each placeholder's type is the column's);
    # Django's field-by-field preparation of them was a tenth of a worker's insert time.
    plain = _PLAIN if numbered else ()
    params = [
        value if type(value) in plain else field.get_db_prep_save(value, db)
        for row in rows
        for field, value in zip(fields, row.values(), strict=True)
    ]
    returning = connection.ops.quote_name(model._meta.get_field(key).column)
    with blob_cursor(numbered=numbered) as cursor:
        cursor.execute(
            f"INSERT INTO {table(model)} ({columns}) VALUES {marks} RETURNING id, {returning}",
            params,
        )
        return cursor.fetchall()


def bump(ctx: Context, conversation: Conversation, name: str, amount: int = 1) -> None:
    deltas = ctx.deltas[conversation.pk]
    deltas[name] = deltas.get(name, 0) + amount


def extend(
    ctx: Context, conversation: Conversation, first_ts: int, last_ts: int, received_at: datetime
) -> None:
    """Widen the recording's span, and take the batch's clock sample (see clock.py)."""
    deltas = ctx.deltas[conversation.pk]
    deltas["start"] = min(deltas.get("start", first_ts), first_ts)
    deltas["end"] = max(deltas.get("end", last_ts), last_ts)
    sample = epoch_ms(received_at) - last_ts
    deltas["offset"] = min(deltas.get("offset", sample), sample)


def first_page(ctx: Context, conversation: Conversation, event_index: int, href: str) -> None:
    """Offer a batch's page as the conversation's first (the list shows it)."""
    deltas = ctx.deltas[conversation.pk]
    if href and ("page" not in deltas or event_index < deltas["page"][0]):
        deltas["page"] = (event_index, href)


# The counters ingest adds to (bump).
_COUNTERS = (
    "message_total",
    "event_total",
    "rrweb_batch_total",
    "rrweb_event_total",
    "scrubbed_total",
    "console_error_total",
    "network_error_total",
)
# The spans it widens (extend): the column, and the comparison by which a new value wins.
_SPANS = {
    "start": ("recording_start_ms", ">"),
    "end": ("recording_end_ms", "<"),
    "offset": ("clock_offset_ms", ">"),
}


def _span_set(column: str, wins: str, value: str, old: str = "") -> str:
    """SET `column` to `value` where that widens it (`old`: how the current row is named)."""
    current = f"{old}{column}"
    return (
        f"{column} = CASE WHEN {value} IS NOT NULL AND ({current} IS NULL "
        f"OR {current} {wins} {value}) THEN {value} ELSE {current} END"
    )


def _page_sets(index: str, href: str, old: str = "") -> list[str]:
    """SET the first page where `index` is earlier: batches come in any order."""
    earlier = (
        f"{index} IS NOT NULL AND ({old}first_href_index IS NULL "
        f"OR {old}first_href_index > {index})"
    )
    return [
        f"first_href = CASE WHEN {earlier} THEN {href} ELSE {old}first_href END",
        f"first_href_index = CASE WHEN {earlier} THEN {index} ELSE {old}first_href_index END",
    ]


def counters_write(ctx: Context) -> None:
    """Add up each conversation's counters: one UPDATE for them all on PostgreSQL.

    A worker's round touches dozens of conversations; an UPDATE each cost a statement's
    round trip, parse and plan (about 0.2 ms of CPU between the worker and the server).
    """
    known = {*_COUNTERS, *_SPANS, "page"}
    if (
        connection.vendor == "postgresql"
        and len(ctx.deltas) > 1
        and all(name in known for deltas in ctx.deltas.values() for name in deltas)
    ):
        _counters_write_all(ctx)
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    for pk, deltas in ctx.deltas.items():
        sets = ["updated_at = %s"]
        params: list = [now]
        for name, amount in deltas.items():
            if name in _SPANS:
                sets.append(_span_set(*_SPANS[name], "%s"))
                params += [amount] * 3
            elif name == "page":
                sets += _page_sets("%s", "%s")
                index, href = amount
                params += [index, index, href, index, index, index]
            else:
                column = connection.ops.quote_name(name)
                sets.append(f"{column} = {column} + %s")
                params.append(amount)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table(Conversation)} SET {', '.join(sets)} WHERE id = %s", [*params, pk]
            )


def _counters_write_all(ctx: Context) -> None:
    """counters_write as one UPDATE ... FROM (VALUES ...) for every conversation."""
    params: list = [connection.ops.adapt_datetimefield_value(timezone.now())]
    rows = []
    for pk in sorted(ctx.deltas):
        deltas = ctx.deltas[pk]
        values = [pk, *(deltas.get(name, 0) for name in _COUNTERS)]
        values += [deltas.get(name) for name in _SPANS]
        values += deltas.get("page") or (None, None)
        casts = ["bigint"] * (len(values) - 1) + ["text"]
        rows.append("(" + ", ".join(f"%s::{cast}" for cast in casts) + ")")
        params += values
    names = ["id", *_COUNTERS, *(f"span_{name}" for name in _SPANS), "page_index", "page_href"]
    sets = ["updated_at = %s"]
    sets += [f"{name} = c.{name} + v.{name}" for name in _COUNTERS]
    sets += [_span_set(*_SPANS[name], f"v.span_{name}", "c.") for name in _SPANS]
    sets += _page_sets("v.page_index", "v.page_href", "c.")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table(Conversation)} AS c SET {', '.join(sets)} "
            f"FROM (VALUES {', '.join(rows)}) AS v({', '.join(names)}) WHERE c.id = v.id",
            params,
        )
