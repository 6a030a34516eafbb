"""The consent state's column check raises its own message.

``comms_state_check_column`` (migration 0007) is called by the trigger function, not run as a
trigger itself, so it has no ``TG_TABLE_NAME``: a backward move was refused, but with "column
tg_table_name does not exist" instead of the guard's message and ``insufficient_privilege``.
"""

from django.db import migrations

PG_FUNCTION = r"""
CREATE OR REPLACE FUNCTION comms_state_check_column(
    new_event bigint, new_order text, old_order text, row_contact bigint, row_channel text,
    row_purpose bigint, actions text[], column_name text
) RETURNS void AS $$
DECLARE
    ev record;
BEGIN
    IF new_order IS DISTINCT FROM old_order OR old_order IS NULL THEN
        IF new_order < COALESCE(old_order, '') THEN
            RAISE EXCEPTION 'comms: consent state %.% may only move forward', 'suppression_consentstate', column_name
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
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_FUNCTION, params=None)


class Migration(migrations.Migration):
    dependencies = [("suppression", "0010_truncate_guards")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
