"""Plain statements for the ledger's hot paths, without the ORM's compilation.

``run`` executes one statement with server-side parameters (prepared where it repeats: the gate's
decision, the append's two functions); ``select_rows`` loads model instances for one
``SELECT … WHERE``. The writes themselves are ``comms_ledger_write`` (``append.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model, signals
from django.db.models.base import ModelState
from psycopg import pq

M = TypeVar("M", bound=Model)


def run(sql: str, params: Sequence[Any] = (), *, prepare: bool = True) -> list[tuple[Any, ...]]:
    """Execute one statement on PostgreSQL with server-side parameters, in the caller's
    transaction; returns its rows. ``prepare``: as a prepared statement (psycopg prepares it on
    this connection the first time and reuses its plan) — for the single-row statements of an
    append and the gate, which the ORM's client-side cursor would have parsed and planned again
    every time. Statements over a batch of rows are not prepared: a plan kept from when a table
    was small (a sequential scan) would stay while the table grows, until the next ANALYZE."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each ``connection.…`` is a thread-local look-up
    db.ensure_connection()
    # Django's exception classes (IntegrityError, …), as from the ORM's own cursors.
    with db.wrap_database_errors, psycopg.Cursor(db.connection) as cursor:
        cursor.execute(sql, list(params), prepare=prepare and settings.DB_PREPARED_STATEMENTS)
        # Rows or none, told by the result's status (``description`` builds a column object each).
        result = cursor.pgresult
        return cursor.fetchall() if result is not None and result.status == pq.ExecStatus.TUPLES_OK else []


def _quote(name: str) -> str:
    return str(connection.ops.quote_name(name))


_select_sql: dict[tuple[type[Model], frozenset[str]], tuple[str, list[str]]] = {}


def select_rows(
    model: type[M],
    where: str,
    params: Sequence[Any],
    *,
    prepare: bool = True,
    defer: Collection[str] = (),
) -> list[M]:
    """Instances of ``model`` for one uncompiled ``SELECT … WHERE {where}`` (PostgreSQL only:
    the callers pass PostgreSQL SQL). ``defer``: fields left unloaded, as ``QuerySet.defer``
    leaves them (read on first access, by a query of its own)."""
    key = (model, frozenset(defer))
    cached = _select_sql.get(key)
    if cached is None:
        fields = [f for f in model._meta.concrete_fields if f.attname not in key[1] and f.name not in key[1]]
        if model._meta.pk not in fields:
            raise ValueError("the primary key cannot be deferred")
        columns = ", ".join(_quote(str(f.column)) for f in fields)
        cached = _select_sql[key] = (
            f"SELECT {columns} FROM {_quote(model._meta.db_table)} WHERE ",
            [f.attname for f in fields],
        )
    head, names = cached
    rows = run(head + where, params, prepare=prepare)
    if signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model):
        return [model.from_db("default", names, row) for row in rows]
    # What ``from_db`` makes, without ``Model.__init__``'s per-field descriptor work (an import
    # loads a thousand contacts per chunk): the column values in the instance's ``__dict__``.
    instances = []
    for row in rows:
        instance = model.__new__(model)
        instance.__dict__.update(zip(names, row, strict=True))
        instance._state = loaded_state()
        instances.append(instance)
    return instances


def loaded_state() -> ModelState:
    """The ``_state`` of an instance as ``Model.from_db`` leaves it: saved, in the default database."""
    state = ModelState()
    state.adding = False
    state.db = "default"
    return state
