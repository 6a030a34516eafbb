"""Least privilege in PostgreSQL: the service role may do what the code does, and no more.

Migrations run as the role that owns the tables (``DATABASE_MIGRATE_URL``); the processes
connect as a service role (``DATABASE_URL``) that is not a superuser, owns nothing, may not
TRUNCATE, may not create or alter tables or triggers, and has on the ledger tables only the
privileges listed in ``LEDGER_TABLE_PRIVILEGES``. Every other table gets SELECT, INSERT, UPDATE
and DELETE. ``service_role_grant`` runs as the owner, after every migration (``manage.py
release``), and is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

# THE list: the ledger and its companions, with exactly what the service may do to each. A new
# append-only table must be added here by hand (the default for an unlisted table includes
# DELETE). Names of tables that do not exist yet are skipped.
LEDGER_TABLE_PRIVILEGES: dict[str, tuple[str, ...]] = {
    "suppression_consentevent": ("SELECT", "INSERT"),
    # evidence_redact() drops personal data from evidence rows by UPDATE; never DELETE.
    "suppression_consentevidence": ("SELECT", "INSERT", "UPDATE"),
    "suppression_purposenotice": ("SELECT", "INSERT"),
    # Every append moves its chain's head (seq, hash); heads are never deleted.
    "suppression_chainhead": ("SELECT", "INSERT", "UPDATE"),
    # The lift (a trigger allows no other UPDATE).
    "suppression_suppression": ("SELECT", "INSERT", "UPDATE"),
    "suppression_ledgercheckpoint": ("SELECT", "INSERT"),
    # Erasure deletes the stored file and marks the row (deleted_at); the row and its hash stay.
    "suppression_prooffile": ("SELECT", "INSERT", "UPDATE"),
    "rights_auditentry": ("SELECT", "INSERT"),
    # The gate's read model, written by the ledger service in the event's transaction.
    "suppression_consentstate": ("SELECT", "INSERT", "UPDATE"),
    "suppression_consentimportkey": ("SELECT", "INSERT"),
    # The count of chains: the first append may record it; only the owner changes it (release).
    "suppression_ledgerlayout": ("SELECT", "INSERT"),
    # Migrations are the owner's business; the service only reads which ones ran.
    "django_migrations": ("SELECT",),
}
DEFAULT_TABLE_PRIVILEGES: tuple[str, ...] = ("SELECT", "INSERT", "UPDATE", "DELETE")
# Attributes the service role must not have (CREATE ROLE … NO<attribute>).
FORBIDDEN_ATTRIBUTES = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")
_ATTRIBUTE_COLUMNS = {
    "SUPERUSER": "rolsuper",
    "CREATEDB": "rolcreatedb",
    "CREATEROLE": "rolcreaterole",
    "REPLICATION": "rolreplication",
    "BYPASSRLS": "rolbypassrls",
}
_ALL_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


class RoleError(Exception):
    """The service role cannot be made least-privileged (it is the owner, a superuser, …)."""


@dataclass
class GrantReport:
    role: str
    created: bool = False
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    missing_ledger_tables: list[str] = field(default_factory=list)


def table_privileges(table: str) -> tuple[str, ...]:
    """What the service role may do to ``table``."""
    return LEDGER_TABLE_PRIVILEGES.get(table, DEFAULT_TABLE_PRIVILEGES)


def _owned_tables(connection: BaseDatabaseWrapper) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
            " AND pg_get_userbyid(c.relowner) = current_user ORDER BY c.relname"
        )
        return [row[0] for row in cursor.fetchall()]


def _role_row(connection: BaseDatabaseWrapper, role: str) -> dict[str, bool] | None:
    columns = ", ".join(_ATTRIBUTE_COLUMNS.values())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM pg_roles WHERE rolname = %s", [role])
        row = cursor.fetchone()
    return None if row is None else dict(zip(_ATTRIBUTE_COLUMNS, row, strict=True))


def _ensure_role(
    connection: BaseDatabaseWrapper, role: str, password: str | None, password_if_created: str | None
) -> bool:
    """Create the role if it is missing (True if created); strip forbidden attributes."""
    quoted = connection.ops.quote_name(role)
    restrictions = " ".join(f"NO{attribute}" for attribute in FORBIDDEN_ATTRIBUTES)
    created = False
    attributes = _role_row(connection, role)
    with connection.cursor() as cursor:
        if attributes is None:
            # Two releases at once: the second CREATE fails; it then finds the role and goes on.
            try:
                with transaction.atomic(using=connection.alias):
                    cursor.execute(f"CREATE ROLE {quoted} LOGIN NOINHERIT {restrictions}")
                created = True
            except DatabaseError:
                if _role_row(connection, role) is None:
                    raise
            attributes = _role_row(connection, role)
            assert attributes is not None
        present = [name for name, value in attributes.items() if value]
        if present:
            cursor.execute(f"ALTER ROLE {quoted} {' '.join(f'NO{name}' for name in present)}")
        password = password or (password_if_created if created else None)
        if password:
            cursor.execute(f"ALTER ROLE {quoted} LOGIN PASSWORD %s", [password])
    return created


def service_role_grant(
    *,
    connection: BaseDatabaseWrapper,
    role: str,
    password: str | None = None,
    password_if_created: str | None = None,
) -> GrantReport:
    """As the owner: make ``role`` exist and hold exactly the privileges of this module.

    ``password`` is always set when given (rotation); ``password_if_created`` only when the role
    is new (the release step passes DATABASE_URL's). Raises ``RoleError`` when ``role`` is
    the connecting (owning) role or a member of it.
    """
    if connection.vendor != "postgresql":
        raise RoleError("database roles exist on PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        owner, database = cursor.fetchone()
    if role == owner:
        raise RoleError(f"the service role must not be the owner ({owner}): give it its own role")
    report = GrantReport(role=role)
    quoted = connection.ops.quote_name(role)
    with transaction.atomic(using=connection.alias):
        report.created = _ensure_role(connection, role, password, password_if_created)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [role, owner])
            if cursor.fetchone()[0]:
                raise RoleError(f"{role} is a member of the owning role {owner}: revoke that membership")
            cursor.execute("SELECT current_schema()")
            schema = connection.ops.quote_name(cursor.fetchone()[0])
            cursor.execute(f"GRANT CONNECT ON DATABASE {connection.ops.quote_name(database)} TO {quoted}")
            cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {quoted}")
            # No DDL: nobody but the owner creates objects in the schema (PostgreSQL 15's default).
            cursor.execute(f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC, {quoted}")
            tables = _owned_tables(connection)
            for table in tables:
                privileges = table_privileges(table)
                name = connection.ops.quote_name(table)
                cursor.execute(f"REVOKE ALL ON TABLE {name} FROM {quoted}")
                cursor.execute(f"GRANT {', '.join(privileges)} ON TABLE {name} TO {quoted}")
                report.tables[table] = privileges
            report.missing_ledger_tables = sorted(set(LEDGER_TABLE_PRIVILEGES) - set(tables))
            cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {quoted}")
            # Tables a later migration creates are usable before the next grant run; a new ledger
            # table still has to be listed above to lose DELETE (its triggers refuse it meanwhile).
            cursor.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT "
                f"{', '.join(DEFAULT_TABLE_PRIVILEGES)} ON TABLES TO {quoted}"
            )
            cursor.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {quoted}"
            )
    return report


def service_role_problems(*, connection: BaseDatabaseWrapper, role: str) -> list[str]:
    """Everything about ``role`` that is more (or less) than this module grants; empty if right."""
    attributes = _role_row(connection, role)
    if attributes is None:
        return [f"role {role} does not exist"]
    problems = [f"{role} has {name}" for name, value in attributes.items() if value]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname"
        )
        tables = cursor.fetchall()
        for table, owner in tables:
            if owner == role:
                problems.append(f"{role} owns {table}")
            expected = set(table_privileges(table))
            for privilege in _ALL_TABLE_PRIVILEGES:
                cursor.execute("SELECT has_table_privilege(%s, %s, %s)", [role, table, privilege])
                held = bool(cursor.fetchone()[0])
                if held and privilege not in expected:
                    problems.append(f"{role} may {privilege} {table}")
                elif not held and privilege in expected:
                    problems.append(f"{role} may not {privilege} {table}")
        cursor.execute("SELECT has_schema_privilege(%s, current_schema(), 'CREATE')", [role])
        if cursor.fetchone()[0]:
            problems.append(f"{role} may create objects in the schema")
    return problems
