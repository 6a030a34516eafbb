"""Build the consent state of existing events, and let the database guard it.

PostgreSQL: the ``*_order`` columns compare byte-wise (COLLATE "C"); a state row cannot be
deleted; an insert or update must point each column at a real event of the right kind and
scope, with that event's own place in the fold's order, and may only move an order forward
(never back, never to nothing). So only an append, applied in order, can change the state;
``verify_ledger --state`` proves the rest. The import keys are append-only.
SQLite (the zero-setup default): no deletes, and orders only move forward.
"""

from django.db import migrations

ORDERS = ("positive", "pending", "withdrawal", "objection", "restriction")

PG_COLLATE = "\n".join(
    f'ALTER TABLE suppression_consentstate ALTER COLUMN {name}_order TYPE varchar(44) COLLATE "C";'
    for name in ORDERS
)

# Which actions each column may point at, and at which scope level.
PG_TRIGGERS = r"""
CREATE OR REPLACE FUNCTION comms_event_order(event_id bigint) RETURNS text AS $$
    SELECT lpad(((extract(epoch FROM e.occurred_at) * 1000000)::bigint + 62135596800000000)::text, 20, '0')
           || lpad(e.chain::text, 5, '0') || lpad(e.seq::text, 19, '0')
    FROM suppression_consentevent e WHERE e.id = event_id
$$ LANGUAGE sql STABLE;

CREATE OR REPLACE FUNCTION comms_state_check_column(
    new_event bigint, new_order text, old_order text, row_contact bigint, row_channel text,
    row_purpose bigint, actions text[], column_name text
) RETURNS void AS $$
DECLARE
    ev record;
BEGIN
    IF new_order IS DISTINCT FROM old_order OR old_order IS NULL THEN
        IF new_order < COALESCE(old_order, '') THEN
            RAISE EXCEPTION 'comms: consent state %.% may only move forward', TG_TABLE_NAME, column_name
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF new_order <> '' THEN
            SELECT e.contact_id, e.channel, e.purpose_id, e.action, e.pending_confirmation INTO ev
            FROM suppression_consentevent e WHERE e.id = new_event;
            IF NOT FOUND OR ev.contact_id IS DISTINCT FROM row_contact OR ev.channel <> row_channel
               OR ev.purpose_id IS DISTINCT FROM row_purpose
               OR NOT ((CASE WHEN ev.action = 'grant' AND ev.pending_confirmation THEN 'pending_grant'
                             ELSE ev.action END) = ANY(actions))
               OR comms_event_order(new_event) <> new_order THEN
                RAISE EXCEPTION 'comms: consent state % does not name an event of its scope in its place', column_name
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
        END IF;
    END IF;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION comms_state_guard() RETURNS trigger AS $$
DECLARE
    o suppression_consentstate%ROWTYPE;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.contact_id <> OLD.contact_id OR NEW.channel <> OLD.channel
           OR NEW.purpose_id IS DISTINCT FROM OLD.purpose_id THEN
            RAISE EXCEPTION 'comms: a consent state row keeps its scope' USING ERRCODE = 'insufficient_privilege';
        END IF;
        o := OLD;
    END IF;
    PERFORM comms_state_check_column(NEW.positive_event_id, NEW.positive_order, o.positive_order,
        NEW.contact_id, NEW.channel, NEW.purpose_id, ARRAY['grant', 'confirm'], 'positive');
    PERFORM comms_state_check_column(NEW.pending_event_id, NEW.pending_order, o.pending_order,
        NEW.contact_id, NEW.channel, NEW.purpose_id, ARRAY['pending_grant'], 'pending');
    PERFORM comms_state_check_column(NEW.withdrawal_event_id, NEW.withdrawal_order, o.withdrawal_order,
        NEW.contact_id, NEW.channel, NEW.purpose_id, ARRAY['withdraw'], 'withdrawal');
    PERFORM comms_state_check_column(NEW.objection_event_id, NEW.objection_order, o.objection_order,
        NEW.contact_id, NEW.channel, NEW.purpose_id, ARRAY['object'], 'objection');
    PERFORM comms_state_check_column(NEW.restriction_event_id, NEW.restriction_order, o.restriction_order,
        NEW.contact_id, NEW.channel, NEW.purpose_id, ARRAY['restrict', 'lift_restriction'], 'restriction');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER consentstate_guard
    BEFORE INSERT OR UPDATE ON suppression_consentstate
    FOR EACH ROW EXECUTE FUNCTION comms_state_guard();

CREATE TRIGGER consentstate_no_delete
    BEFORE DELETE ON suppression_consentstate
    FOR EACH ROW EXECUTE FUNCTION comms_refuse_change();

CREATE TRIGGER consentimportkey_append_only
    BEFORE UPDATE OR DELETE ON suppression_consentimportkey
    FOR EACH ROW EXECUTE FUNCTION comms_refuse_change();
"""

PG_BACKWARD = r"""
DROP TRIGGER IF EXISTS consentimportkey_append_only ON suppression_consentimportkey;
DROP TRIGGER IF EXISTS consentstate_no_delete ON suppression_consentstate;
DROP TRIGGER IF EXISTS consentstate_guard ON suppression_consentstate;
DROP FUNCTION IF EXISTS comms_state_guard();
DROP FUNCTION IF EXISTS comms_state_check_column(bigint, text, text, bigint, text, bigint, text[], text);
DROP FUNCTION IF EXISTS comms_event_order(bigint);
"""

_forward_only = " OR ".join(f"NEW.{name}_order < OLD.{name}_order" for name in ORDERS)
SQLITE_FORWARD = [
    """CREATE TRIGGER consentstate_no_delete BEFORE DELETE ON suppression_consentstate
       BEGIN SELECT RAISE(ABORT, 'comms: consent state rows are never deleted'); END;""",
    f"""CREATE TRIGGER consentstate_forward_only BEFORE UPDATE ON suppression_consentstate
       WHEN {_forward_only} OR NEW.contact_id <> OLD.contact_id OR NEW.channel <> OLD.channel
            OR NEW.purpose_id IS NOT OLD.purpose_id
       BEGIN SELECT RAISE(ABORT, 'comms: consent state may only move forward'); END;""",
    """CREATE TRIGGER consentimportkey_no_update BEFORE UPDATE ON suppression_consentimportkey
       BEGIN SELECT RAISE(ABORT, 'comms: import keys are append-only'); END;""",
    """CREATE TRIGGER consentimportkey_no_delete BEFORE DELETE ON suppression_consentimportkey
       BEGIN SELECT RAISE(ABORT, 'comms: import keys are append-only'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS consentstate_no_delete",
    "DROP TRIGGER IF EXISTS consentstate_forward_only",
    "DROP TRIGGER IF EXISTS consentimportkey_no_update",
    "DROP TRIGGER IF EXISTS consentimportkey_no_delete",
]


def guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_COLLATE, params=None)
        schema_editor.execute(PG_TRIGGERS, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def guards_backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


def build(apps, schema_editor):
    from comms.suppression.state import state_rebuild

    state_rebuild(
        event_model=apps.get_model("suppression", "ConsentEvent"),
        state_model=apps.get_model("suppression", "ConsentState"),
    )


class Migration(migrations.Migration):
    dependencies = [("suppression", "0006_consent_state")]
    operations = [
        migrations.RunPython(guards, guards_backward),
        migrations.RunPython(build, migrations.RunPython.noop),
    ]
