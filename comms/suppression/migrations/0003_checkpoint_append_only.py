"""Ledger checkpoints are append-only too: rewriting the chain must not be able to rewrite the
checkpoints that pinned it."""

from django.db import migrations

PG_FORWARD = """
CREATE TRIGGER ledgercheckpoint_append_only
    BEFORE UPDATE OR DELETE ON suppression_ledgercheckpoint
    FOR EACH ROW EXECUTE FUNCTION comms_refuse_change();
"""
PG_BACKWARD = "DROP TRIGGER IF EXISTS ledgercheckpoint_append_only ON suppression_ledgercheckpoint;"
SQLITE_FORWARD = [
    """CREATE TRIGGER ledgercheckpoint_no_update BEFORE UPDATE ON suppression_ledgercheckpoint
       BEGIN SELECT RAISE(ABORT, 'comms: checkpoints are append-only'); END;""",
    """CREATE TRIGGER ledgercheckpoint_no_delete BEFORE DELETE ON suppression_ledgercheckpoint
       BEGIN SELECT RAISE(ABORT, 'comms: checkpoints are append-only'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS ledgercheckpoint_no_update",
    "DROP TRIGGER IF EXISTS ledgercheckpoint_no_delete",
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
    dependencies = [("suppression", "0002_append_only_triggers")]
    operations = [migrations.RunPython(forward, backward)]
