"""The database itself refuses to alter the ledger.

PostgreSQL: triggers raise on UPDATE or DELETE of consent events and notice versions, on DELETE
of suppressions, and on any UPDATE of a suppression other than lifting it once.
SQLite (the zero-setup default): the same rules as SQLite triggers.
"""

from django.db import migrations

PG_FORWARD = r"""
CREATE OR REPLACE FUNCTION comms_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'comms: % on % is not allowed: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER consentevent_append_only
    BEFORE UPDATE OR DELETE ON suppression_consentevent
    FOR EACH ROW EXECUTE FUNCTION comms_refuse_change();

CREATE TRIGGER purposenotice_append_only
    BEFORE UPDATE OR DELETE ON suppression_purposenotice
    FOR EACH ROW EXECUTE FUNCTION comms_refuse_change();

CREATE TRIGGER suppression_no_delete
    BEFORE DELETE ON suppression_suppression
    FOR EACH ROW EXECUTE FUNCTION comms_refuse_change();

CREATE OR REPLACE FUNCTION comms_suppression_lift_only() RETURNS trigger AS $$
BEGIN
    IF OLD.lifted_at IS NULL
       AND NEW.lifted_at IS NOT NULL
       AND NEW.lifted_by_event_id IS NOT NULL
       AND NEW.address_key = OLD.address_key
       AND NEW.channel = OLD.channel
       AND NEW.brand_id IS NOT DISTINCT FROM OLD.brand_id
       AND NEW.reason = OLD.reason
       AND NEW.source_event_id = OLD.source_event_id
       AND NEW.created_at = OLD.created_at THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'comms: a suppression can only be lifted, once, by a ledger event'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER suppression_lift_only
    BEFORE UPDATE ON suppression_suppression
    FOR EACH ROW EXECUTE FUNCTION comms_suppression_lift_only();
"""

PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS suppression_lift_only ON suppression_suppression;
DROP TRIGGER IF EXISTS suppression_no_delete ON suppression_suppression;
DROP TRIGGER IF EXISTS purposenotice_append_only ON suppression_purposenotice;
DROP TRIGGER IF EXISTS consentevent_append_only ON suppression_consentevent;
DROP FUNCTION IF EXISTS comms_suppression_lift_only();
DROP FUNCTION IF EXISTS comms_refuse_change();
"""

SQLITE_FORWARD = [
    """CREATE TRIGGER consentevent_no_update BEFORE UPDATE ON suppression_consentevent
       BEGIN SELECT RAISE(ABORT, 'comms: the ledger is append-only'); END;""",
    """CREATE TRIGGER consentevent_no_delete BEFORE DELETE ON suppression_consentevent
       BEGIN SELECT RAISE(ABORT, 'comms: the ledger is append-only'); END;""",
    """CREATE TRIGGER purposenotice_no_update BEFORE UPDATE ON suppression_purposenotice
       BEGIN SELECT RAISE(ABORT, 'comms: notice versions are append-only'); END;""",
    """CREATE TRIGGER purposenotice_no_delete BEFORE DELETE ON suppression_purposenotice
       BEGIN SELECT RAISE(ABORT, 'comms: notice versions are append-only'); END;""",
    """CREATE TRIGGER suppression_no_delete BEFORE DELETE ON suppression_suppression
       BEGIN SELECT RAISE(ABORT, 'comms: suppressions are never deleted'); END;""",
    """CREATE TRIGGER suppression_lift_only BEFORE UPDATE ON suppression_suppression
       WHEN NOT (OLD.lifted_at IS NULL AND NEW.lifted_at IS NOT NULL AND NEW.lifted_by_event_id IS NOT NULL
                 AND NEW.address_key = OLD.address_key AND NEW.channel = OLD.channel
                 AND NEW.brand_id IS OLD.brand_id AND NEW.reason = OLD.reason
                 AND NEW.source_event_id = OLD.source_event_id AND NEW.created_at = OLD.created_at)
       BEGIN SELECT RAISE(ABORT, 'comms: a suppression can only be lifted, once, by a ledger event'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS consentevent_no_update",
    "DROP TRIGGER IF EXISTS consentevent_no_delete",
    "DROP TRIGGER IF EXISTS purposenotice_no_update",
    "DROP TRIGGER IF EXISTS purposenotice_no_delete",
    "DROP TRIGGER IF EXISTS suppression_no_delete",
    "DROP TRIGGER IF EXISTS suppression_lift_only",
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
    dependencies = [("suppression", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
