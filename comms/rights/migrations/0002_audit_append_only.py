"""The rights audit log is append-only: the database refuses UPDATE and DELETE on it, as it does
for the ledger (PostgreSQL reuses the ledger's ``comms_refuse_change`` function)."""

from django.db import migrations

PG_FORWARD = """
CREATE TRIGGER rights_auditentry_append_only
    BEFORE UPDATE OR DELETE ON rights_auditentry
    FOR EACH ROW EXECUTE FUNCTION comms_refuse_change();
"""
PG_BACKWARD = "DROP TRIGGER IF EXISTS rights_auditentry_append_only ON rights_auditentry;"
SQLITE_FORWARD = [
    """CREATE TRIGGER rights_auditentry_no_update BEFORE UPDATE ON rights_auditentry
       BEGIN SELECT RAISE(ABORT, 'comms: the rights audit log is append-only'); END;""",
    """CREATE TRIGGER rights_auditentry_no_delete BEFORE DELETE ON rights_auditentry
       BEGIN SELECT RAISE(ABORT, 'comms: the rights audit log is append-only'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS rights_auditentry_no_update",
    "DROP TRIGGER IF EXISTS rights_auditentry_no_delete",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FORWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("rights", "0001_initial"),
        ("suppression", "0002_append_only_triggers"),
    ]
    operations = [migrations.RunPython(forward, backward)]
