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
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if pk.get_internal_type() in ("AutoField", "BigAutoField"):
            # Take the ids from the table's sequence first, so each row's id is known for sure.
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [model._meta.db_table, pk.column, len(objs)],
            )
            for obj, (new_id,) in zip(objs, cursor.fetchall(), strict=True):
                obj.pk = new_id
        fields = [f for f in model._meta.concrete_fields]
        columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
        arrays = ", ".join(f"%s::{_array_type(f)}[]" for f in fields)
        params = [[_plain(getattr(obj, f.attname)) for obj in objs] for f in fields]
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})", params)
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
    table = connection.ops.quote_name(model._meta.db_table)
    quoted = [connection.ops.quote_name(str(f.column)) for f in fields]
    sets = ", ".join(f"{name} = u.{name}" for name in quoted)
    arrays = ", ".join(["%s::bigint[]", *(f"%s::{_array_type(f)}[]" for f in fields)])
    params = [[obj.pk for obj in objs]] + [[_plain(getattr(obj, f.attname)) for obj in objs] for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET {sets} FROM unnest({arrays}) AS u(id, {', '.join(quoted)})"
            f" WHERE t.{connection.ops.quote_name(str(pk.column))} = u.id",
            params,
        )
