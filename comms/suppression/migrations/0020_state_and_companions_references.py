"""The foreign keys left on the append path, held by the ledger's own checks (as 0019 did for
the events): the consent state's contact and purpose, and the evidence's and import key's event.

Each foreign key checked its rows one by one at commit with ``SELECT … FOR KEY SHARE``: a row
lock and a WAL record per state row, evidence row and import key, and on the purpose row, which
every concurrent append and import thread shares, a MultiXact. Instead:

- **State.** The insert guard (0017's query) now also refuses a new state row that names no event
  (the ledger service never makes one: a row is created for the event that advances it). Every
  event a row names must already be of the row's contact, channel and purpose (0012), and such an
  event exists and keeps its contact and purpose from being deleted (0019); so a state row's
  contact and purpose exist, and stay. The update guard refuses a changed scope, as before.
- **Evidence and import keys.** ``comms_names_event()``, a statement-level AFTER INSERT (and, for
  evidence, which redaction updates, AFTER UPDATE) trigger, looks every distinct ``event_id`` of
  the statement up in one index scan and refuses a missing one (``foreign_key_violation``).
  Events are never deleted (0002), so nothing can take the event away afterwards.

SQLite: altering the evidence's key remakes its table, which drops its no-delete trigger (0010);
it is made again here.
"""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

_guard = import_module("comms.suppression.migrations.0017_state_guard_one_lookup")
_guards_0010 = import_module("comms.suppression.migrations.0010_truncate_guards")

# A new state row names at least one event (0017 checks that each it names is of its scope).
_NAMES_NO_EVENT = (
    "n.positive_event_id IS NULL AND n.pending_event_id IS NULL AND n.withdrawal_event_id IS NULL"
    " AND n.objection_event_id IS NULL AND n.restriction_event_id IS NULL"
)
# 0017's first finding is "the scope changed", which an insert cannot do; for an insert it is
# now "names no event", with its own message.
_SCOPE_MESSAGE = "'comms: a consent state row keeps its scope'"
_INSERT_BODY = _guard._body("LEFT JOIN suppression_consentstate o ON false", "true", _NAMES_NO_EVENT)
if _SCOPE_MESSAGE not in _INSERT_BODY:
    raise RuntimeError("0017's guard changed: its scope message is not where 0020 replaces it")
_INSERT_GUARD = (
    f"CREATE OR REPLACE FUNCTION comms_state_guard_insert() RETURNS trigger LANGUAGE plpgsql {_guard._SETTINGS}"
    " AS $$\n"
    + _INSERT_BODY.replace(_SCOPE_MESSAGE, "'comms: a new consent state row names no event of its scope'")
    + "\n$$;"
)
_INSERT_GUARD_0017 = (
    f"CREATE OR REPLACE FUNCTION comms_state_guard_insert() RETURNS trigger LANGUAGE plpgsql {_guard._SETTINGS}"
    " AS $$\n" + _guard._body("LEFT JOIN suppression_consentstate o ON false", "true", "false") + "\n$$;"
)

NAMES_EVENT = """
CREATE OR REPLACE FUNCTION comms_names_event() RETURNS trigger LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan SET jit = off AS $fn$
DECLARE
    v_ids bigint[];
BEGIN
    SELECT coalesce(array_agg(DISTINCT event_id), '{}') INTO v_ids FROM comms_new;
    IF (SELECT count(*) FROM suppression_consentevent WHERE id = ANY(v_ids)) <> cardinality(v_ids) THEN
        RAISE EXCEPTION 'comms: a % row names a consent event that does not exist', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', COLUMN = 'event_id';
    END IF;
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS consentevidence_names_event ON suppression_consentevidence;
CREATE TRIGGER consentevidence_names_event AFTER INSERT ON suppression_consentevidence
    REFERENCING NEW TABLE AS comms_new FOR EACH STATEMENT EXECUTE FUNCTION comms_names_event();
DROP TRIGGER IF EXISTS consentevidence_names_event_update ON suppression_consentevidence;
CREATE TRIGGER consentevidence_names_event_update AFTER UPDATE ON suppression_consentevidence
    REFERENCING NEW TABLE AS comms_new FOR EACH STATEMENT EXECUTE FUNCTION comms_names_event();
DROP TRIGGER IF EXISTS consentimportkey_names_event ON suppression_consentimportkey;
CREATE TRIGGER consentimportkey_names_event AFTER INSERT ON suppression_consentimportkey
    REFERENCING NEW TABLE AS comms_new FOR EACH STATEMENT EXECUTE FUNCTION comms_names_event();
"""
NAMES_EVENT_DROP = """
DROP TRIGGER IF EXISTS consentevidence_names_event ON suppression_consentevidence;
DROP TRIGGER IF EXISTS consentevidence_names_event_update ON suppression_consentevidence;
DROP TRIGGER IF EXISTS consentimportkey_names_event ON suppression_consentimportkey;
DROP FUNCTION IF EXISTS comms_names_event();
"""


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for statement in _guards_0010.SQLITE_FORWARD:
            if "ON suppression_consentevidence" in statement:
                schema_editor.execute(statement.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS"))
        return
    if vendor != "postgresql":
        return
    schema_editor.execute(_INSERT_GUARD, params=None)
    schema_editor.execute(NAMES_EVENT, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(NAMES_EVENT_DROP, params=None)
    schema_editor.execute(_INSERT_GUARD_0017, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0003_verbose_names"),
        ("suppression", "0019_event_references"),
    ]

    operations = [
        migrations.AlterField(
            model_name="consentevidence",
            name="event",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                primary_key=True,
                related_name="evidence",
                serialize=False,
                to="suppression.consentevent",
            ),
        ),
        migrations.AlterField(
            model_name="consentimportkey",
            name="event",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="suppression.consentevent",
            ),
        ),
        migrations.AlterField(
            model_name="consentstate",
            name="contact",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="contacts.contact",
            ),
        ),
        migrations.AlterField(
            model_name="consentstate",
            name="purpose",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="suppression.purpose",
            ),
        ),
        migrations.RunPython(forward, backward),
    ]
