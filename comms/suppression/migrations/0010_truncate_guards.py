"""Nothing can wipe the ledger in one statement.

Row triggers (0002, 0003, rights 0002) do not fire on TRUNCATE, so a ``TRUNCATE … CASCADE`` could
empty the consent events and everything that references them. PostgreSQL: a statement-level
``BEFORE TRUNCATE`` trigger on every append-only table refuses it, also when the table is only
reached through the CASCADE of a truncate on another table. The chain heads change on every
append but must not vanish either: DELETE is refused on them and on evidence rows (which the
code redacts by UPDATE, never deletes).

``comms_refuse_truncate()`` is the reusable trigger function; guarding a new table is one line:

    CREATE TRIGGER <table>_no_truncate BEFORE TRUNCATE ON <table>
        FOR EACH STATEMENT EXECUTE FUNCTION comms_refuse_truncate();

SQLite (the zero-setup default) has no TRUNCATE; it gets the two new DELETE rules only.
"""

from django.db import migrations

# Every table whose rows are evidence: none may be truncated.
GUARDED_TABLES = [
    "suppression_consentevent",
    "suppression_consentevidence",
    "suppression_purposenotice",
    "suppression_chainhead",
    "suppression_suppression",
    "suppression_ledgercheckpoint",
    "suppression_prooffile",
    "rights_auditentry",
    "suppression_consentstate",
    "suppression_consentimportkey",
]
# Tables whose rows change but must never be deleted (rows of the others are refused since 0002).
NO_DELETE_TABLES = ["suppression_chainhead", "suppression_consentevidence"]

PG_FUNCTION = r"""
CREATE OR REPLACE FUNCTION comms_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'comms: TRUNCATE of % is not allowed: the ledger is append-only', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""
PG_FORWARD = [PG_FUNCTION] + [
    f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION comms_refuse_truncate();"
    for table in GUARDED_TABLES
] + [
    f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
    f"FOR EACH ROW EXECUTE FUNCTION comms_refuse_change();"
    for table in NO_DELETE_TABLES
]
PG_BACKWARD = (
    [f"DROP TRIGGER IF EXISTS {table}_no_delete ON {table};" for table in NO_DELETE_TABLES]
    + [f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};" for table in GUARDED_TABLES]
    + ["DROP FUNCTION IF EXISTS comms_refuse_truncate();"]
)
SQLITE_FORWARD = [
    f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
       BEGIN SELECT RAISE(ABORT, 'comms: DELETE on {table} is not allowed: the ledger is append-only'); END;"""
    for table in NO_DELETE_TABLES
]
SQLITE_BACKWARD = [f"DROP TRIGGER IF EXISTS {table}_no_delete" for table in NO_DELETE_TABLES]


def forward(apps, schema_editor):
    statements = {"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}.get(schema_editor.connection.vendor, [])
    for statement in statements:
        schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    statements = {"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD}.get(schema_editor.connection.vendor, [])
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("suppression", "0007_consent_state_build"),
        ("rights", "0003_self_service_requests"),
    ]
    operations = [migrations.RunPython(forward, backward)]
