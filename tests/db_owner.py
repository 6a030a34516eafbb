"""The suite runs as the restricted service role; this module is the test's only way back to the owner.

``tests/conftest.py`` migrates the test database as the owner (the superuser bin/test connects
with), grants the service role exactly what production grants (``comms.core.dbroles``), installs
``comms_test_as_owner(sql)`` — a SECURITY DEFINER function that runs one SQL text as the owner, in
the caller's transaction, so a test sees its own uncommitted rows while it plays the attacker —
and then switches every connection to the service role. The function exists only in the test
database; nothing under ``comms/`` knows it, so any code path that needs more privilege than the
grants give fails here as it would in production.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.backends.postgresql.operations import DatabaseOperations

from comms.core.dbroles import service_role_grant

OWNER_FUNCTION = "comms_test_as_owner"
OWNER_ALIAS = "test_owner"
# The owner's (user, password) while the suite runs as the service role.
_owner_credentials: list[tuple[str, str]] = []


def service_role_name(database_name: str) -> str:
    """One role per test database, so parallel runs on other databases do not share it."""
    return f"{database_name}_app"[:63]


def as_owner(sql: str, params: list[Any] | None = None) -> None:
    """Run ``sql`` as the owner on the test's own connection (and in its transaction)."""
    connection.ensure_connection()
    raw = connection.connection
    assert isinstance(raw, psycopg.Connection)
    text = psycopg.ClientCursor(raw).mogrify(sql, params) if params else sql
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {OWNER_FUNCTION}(%s)", [text])


@contextmanager
def owner_connection() -> Iterator[BaseDatabaseWrapper]:
    """A second connection, as the owner, registered as alias ``test_owner`` for the block. It
    does not see a test's uncommitted rows: use it in transactional tests (as_owner otherwise)."""
    user, password = _owner_credentials[-1]
    settings_dict = {**connections["default"].settings_dict, "USER": user, "PASSWORD": password}
    wrapper = connections.create_connection("default").__class__(settings_dict, OWNER_ALIAS)
    connections[OWNER_ALIAS] = wrapper
    try:
        yield wrapper
    finally:
        wrapper.close()
        del connections[OWNER_ALIAS]


@contextmanager
def triggers_disabled(table: str, *triggers: str) -> Iterator[None]:
    """Play the owner who switches triggers off to tamper with a table behind the ledger's back.

    ALTER TABLE refuses while deferred foreign-key checks are queued in the transaction, so they
    run at once for the duration (and are deferred again afterwards, as Django has them)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for trigger in triggers:
        as_owner(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
    try:
        yield
    finally:
        for trigger in triggers:
            as_owner(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _install_owner_function(owner: BaseDatabaseWrapper, role: str) -> None:
    quoted = owner.ops.quote_name(role)
    with owner.cursor() as cursor:
        cursor.execute(
            f"CREATE OR REPLACE FUNCTION {OWNER_FUNCTION}(statement text) RETURNS void"
            " LANGUAGE plpgsql SECURITY DEFINER SET search_path = public"
            " AS $$ BEGIN EXECUTE statement; END; $$"
        )
        cursor.execute(f"REVOKE ALL ON FUNCTION {OWNER_FUNCTION}(text) FROM PUBLIC")
        cursor.execute(f"GRANT EXECUTE ON FUNCTION {OWNER_FUNCTION}(text) TO {quoted}")


def _flush_as_owner(self: BaseDatabaseOperations, sql_list: Iterable[str]) -> None:
    """Transactional tests empty every table afterwards. The service role may not TRUNCATE and
    the ledger's triggers refuse it, so the owner does it with triggers off (replica mode)."""
    with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
        cursor.execute(f"SELECT {OWNER_FUNCTION}(%s)", ["SET LOCAL session_replication_role = replica"])
        for sql in sql_list:
            cursor.execute(f"SELECT {OWNER_FUNCTION}(%s)", [sql])


def _use_credentials(user: str, password: str) -> None:
    connections.close_all()
    for settings_dict in (
        settings.DATABASES["default"],
        connections.settings["default"],
        connections["default"].settings_dict,
    ):
        settings_dict["USER"], settings_dict["PASSWORD"] = user, password


@contextmanager
def running_as_service_role() -> Iterator[str]:
    """Grant the service role, then connect as it until the block ends (yields its name)."""
    owner = connections["default"]
    owner_user, owner_password = owner.settings_dict["USER"], owner.settings_dict["PASSWORD"]
    role = service_role_name(owner.settings_dict["NAME"])
    password = secrets.token_urlsafe(24)
    service_role_grant(connection=owner, role=role, password=password)
    _install_owner_function(owner, role)
    original_flush = DatabaseOperations.execute_sql_flush
    DatabaseOperations.execute_sql_flush = _flush_as_owner  # type: ignore[method-assign]
    _use_credentials(role, password)
    _owner_credentials.append((owner_user, owner_password))
    try:
        yield role
    finally:
        _owner_credentials.pop()
        DatabaseOperations.execute_sql_flush = original_flush  # type: ignore[method-assign]
        _use_credentials(owner_user, owner_password)
