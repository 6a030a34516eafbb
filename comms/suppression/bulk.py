"""Set-based writes for the ledger's bulk paths: one statement per table per batch.

Django's ``bulk_create`` and ``bulk_update`` build a parameter per value (and ``bulk_update`` a
CASE per row and column); at member-base size that is most of an import's time. On PostgreSQL
these helpers send one array per column instead (``INSERT … SELECT FROM unnest(…)``, ``UPDATE …
FROM unnest(…)``). SQLite (the zero-setup default) keeps Django's own methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


def _columns(model: type[Model], names: Sequence[str] | None = None) -> list[Field[Any, Any]]:
    fields = [f for f in model._meta.concrete_fields if names is None or f.attname in names]
    return [
        f for f in fields if not (f.primary_key and f.get_internal_type() in ("AutoField", "BigAutoField"))
    ]


def _plain(value: Any) -> Any:
    """What psycopg sends for a model attribute (the ledger's fields are plain values; choices
    are sent by value)."""
    return value.value if isinstance(value, Enum) else value


def _array_type(field: Field[Any, Any]) -> str:
    db_type = field.db_type(connection) or "text"
    return "text" if db_type.startswith("varchar") else db_type


def run(sql: str, params: Sequence[Any] = (), *, prepare: bool = True) -> list[tuple[Any, ...]]:
    """Execute one statement on PostgreSQL with server-side parameters, in the caller's
    transaction; returns its rows. ``prepare``: as a prepared statement (psycopg prepares it on
    this connection the first time and reuses its plan) — for the single-row statements of an
    append and the gate, which the ORM's client-side cursor would have parsed and planned again
    every time. Statements over a batch of rows are not prepared: a plan kept from when a table
    was small (a sequential scan) would stay while the table grows, until the next ANALYZE."""
    connection.ensure_connection()
    raw = connection.connection
    with psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, list(params), prepare=prepare and settings.DB_PREPARED_STATEMENTS)
        return cursor.fetchall() if cursor.description is not None else []


def _quote(name: str) -> str:
    return str(connection.ops.quote_name(name))


# Per model: the INSERT of one row and the fields it sends (built once per process).
_insert_one_sql: dict[type[Model], tuple[str, list[Field[Any, Any]], bool]] = {}


def insert_one(obj: Model) -> None:
    """Insert one unsaved instance in one statement that Django does not compile each time (an
    append's hot path); sets its primary key. Other databases use ``save``."""
    model = type(obj)
    if connection.vendor != "postgresql":
        obj.save(force_insert=True)
        return
    cached = _insert_one_sql.get(model)
    if cached is None:
        pk = model._meta.pk
        assert pk is not None
        auto = pk.get_internal_type() in ("AutoField", "BigAutoField")
        fields = _columns(model)
        columns = ", ".join(_quote(str(f.column)) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        returning = f" RETURNING {_quote(str(pk.column))}" if auto else ""
        sql = f"INSERT INTO {_quote(model._meta.db_table)} ({columns}) VALUES ({marks}){returning}"
        cached = _insert_one_sql[model] = (sql, fields, auto)
    sql, fields, auto = cached
    rows = run(sql, [_plain(getattr(obj, f.attname)) for f in fields])
    if auto:
        obj.pk = rows[0][0]
    obj._state.adding = False
    obj._state.db = "default"


_update_one_sql: dict[tuple[type[Model], tuple[str, ...]], tuple[str, list[Field[Any, Any]]]] = {}


def update_one(obj: Model, names: Sequence[str]) -> None:
    """Write ``names`` of one saved instance back in one uncompiled statement."""
    if connection.vendor != "postgresql":
        obj.save(update_fields=list(names))
        return
    model = type(obj)
    cached = _update_one_sql.get((model, tuple(names)))
    if cached is None:
        fields = _columns(model, names)
        pk = model._meta.pk
        assert pk is not None
        sets = ", ".join(f"{_quote(str(f.column))} = %s" for f in fields)
        sql = f"UPDATE {_quote(model._meta.db_table)} SET {sets} WHERE {_quote(str(pk.column))} = %s"
        cached = _update_one_sql[(model, tuple(names))] = (sql, fields)
    sql, fields = cached
    run(sql, [*(_plain(getattr(obj, f.attname)) for f in fields), obj.pk])


_select_sql: dict[type[Model], tuple[str, list[str]]] = {}


def select_rows(model: type[M], where: str, params: Sequence[Any], *, prepare: bool = True) -> list[M]:
    """Instances of ``model`` for one uncompiled ``SELECT … WHERE {where}`` (PostgreSQL only:
    the callers pass PostgreSQL SQL)."""
    cached = _select_sql.get(model)
    if cached is None:
        fields = model._meta.concrete_fields
        columns = ", ".join(_quote(str(f.column)) for f in fields)
        cached = _select_sql[model] = (
            f"SELECT {columns} FROM {_quote(model._meta.db_table)} WHERE ",
            [f.attname for f in fields],
        )
    head, names = cached
    return [model.from_db("default", names, row) for row in run(head + where, params, prepare=prepare)]


def insert_rows(objs: Sequence[M]) -> None:
    """Insert unsaved model instances in one statement; sets their primary keys."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, batch_size=1000)
        return
    pk = model._meta.pk
    assert pk is not None
    if pk.get_internal_type() in ("AutoField", "BigAutoField"):
        # Take the ids from the table's sequence first, so each row's id is known for sure.
        ids = run(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s::int)",
            [model._meta.db_table, pk.column, len(objs)],
            prepare=False,
        )
        for obj, (new_id,) in zip(objs, ids, strict=True):
            obj.pk = new_id
    fields = [f for f in model._meta.concrete_fields]
    columns = ", ".join(_quote(str(f.column)) for f in fields)
    # Binary arrays (%b): psycopg formats and escapes no text, and the server parses none.
    arrays = ", ".join(f"%b::{_array_type(f)}[]" for f in fields)
    params = [[_plain(getattr(obj, f.attname)) for obj in objs] for f in fields]
    run(
        f"INSERT INTO {_quote(model._meta.db_table)} ({columns}) SELECT * FROM unnest({arrays})",
        params,
        prepare=False,
    )
    for obj in objs:
        obj._state.adding = False
        obj._state.db = "default"


def update_rows(objs: Sequence[M], names: Sequence[str]) -> None:
    """Write ``names`` of saved instances back, one statement for all."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, list(names), batch_size=1000)
        return
    fields = _columns(model, names)
    pk = model._meta.pk
    assert pk is not None
    quoted = [_quote(str(f.column)) for f in fields]
    sets = ", ".join(f"{name} = u.{name}" for name in quoted)
    arrays = ", ".join(["%b::bigint[]", *(f"%b::{_array_type(f)}[]" for f in fields)])
    params = [[obj.pk for obj in objs]] + [[_plain(getattr(obj, f.attname)) for obj in objs] for f in fields]
    run(
        f"UPDATE {_quote(model._meta.db_table)} AS t SET {sets} FROM unnest({arrays}) AS u(id, {', '.join(quoted)})"
        f" WHERE t.{_quote(str(pk.column))} = u.id",
        params,
        prepare=False,
    )
