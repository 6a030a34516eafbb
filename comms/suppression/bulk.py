"""Plain statements for the ledger's hot paths, without the ORM's compilation.

``run`` executes one statement with server-side parameters (prepared where it repeats: the gate's
decision, the append's two functions); ``select_rows`` loads model instances for one
``SELECT … WHERE``. The writes themselves are ``comms_ledger_write`` (``append.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


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
