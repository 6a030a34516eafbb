"""The consent event's references without foreign-key constraints, and two unique indexes less.

**References.** A foreign key checks each inserted row on its own: ``SELECT 1 … FOR KEY SHARE``
on the contact, the brand, the purpose and the notice of every event, at commit. That row lock
writes WAL and dirties the contact's page, and the brand, purpose and notice rows are shared by
every concurrent append, which then queue on them (MultiXacts). With eight concurrent clients on
two cores the foreign keys alone cost about a quarter of the appends per second. Here the events'
seven references (contact, brand, purpose, actor user, actor contact, notice, confirmed grant)
are held as firmly by triggers instead:

- ``comms_event_references()``, a statement-level AFTER INSERT trigger on the events, looks every
  distinct id the statement's rows name up in its table (one index scan per column over an
  array: a bulk import of a thousand events checks them in one pass) and refuses the statement
  (``foreign_key_violation``, naming the column) if any is missing. An event can therefore only
  name a row that exists, at its insert, as before.
- ``comms_refuse_referenced_change()``, BEFORE DELETE and BEFORE UPDATE OF id triggers on each
  referenced table (contacts, brands, purposes, notice versions, users), refuses to delete or
  renumber a row that an event names. Its statement-level trigger first takes a SHARE lock on
  the events table, before any row is locked: it waits for every append in flight and holds new
  ones until the transaction ends. Its row-level trigger then looks (in READ COMMITTED every
  statement sees what committed before it): an event committed at the same moment cannot be
  missed, and an append that waited for the delete finds the row gone and is refused by the
  check above. It refuses to run in REPEATABLE READ or SERIALIZABLE, where its look
  would use the transaction's older snapshot. SECURITY DEFINER, so that the service role, which
  may not lock the ledger that strongly itself, can still delete an unreferenced row.
- ``comms_refuse_truncate_referenced()``: TRUNCATE of a referenced table is refused while the
  ledger has events (a foreign key refused it, or its CASCADE reached the ledger's guards).
- The ORM keeps ``on_delete=PROTECT`` (Django's collector refuses first, with its own message).
  The events' own rows cannot change at all (0002), so ``confirms`` needs no delete guard.

**Unique indexes.** ``event_unique_hash`` and ``event_unique_prev_per_chain`` are dropped. Both are
B-trees over random 64-character keys, so every append wrote into a random leaf page of each,
which after every checkpoint means a full-page image in the WAL: on a bulk import they were
about a fifth of PostgreSQL's time per event (measured: 117–135 µs → 91 µs per row). No query
reads them. What they stood for still holds: ``(chain, seq)`` stays unique, so a chain has one
event per place; each event's hash covers its chain, seq and predecessor's hash, so a second
event claiming a predecessor (a fork) or a copied event cannot verify at its place, and
``verify_ledger`` names the first such event, as it names any other edit; the checkpoints and
signed anchors fix the heads in time. Prevention was never what makes the ledger
tamper-evident: the hash chain is, and it is unchanged.

**The address index** (the third random-key index every append wrote) keeps only events without
a contact from ``0022`` on, built there without holding appends.

**The consent state's pages** keep a fifth free (``fillfactor = 80``): an append updates its
contact's state row, and with room on the page PostgreSQL writes the new version beside the old
(a HOT update) instead of a new entry in each of the table's five indexes. Before, four of five
state updates were not HOT.

SQLite (the zero-setup default, one writer): the references are checked by the service's own
look-ups as before; altering the fields remakes the events table there, which drops its
append-only triggers, so they are made again at the end (they were already missing after an
earlier remake; ``tests/suppression/test_sqlite_ledger_triggers.py`` now checks they exist).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The events' references: (column, referenced model) by app label and model name.
REFERENCES = (
    ("contact_id", ("contacts", "Contact")),
    ("actor_contact_id", ("contacts", "Contact")),
    ("brand_id", ("contacts", "Brand")),
    ("purpose_id", ("suppression", "Purpose")),
    ("notice_id", ("suppression", "PurposeNotice")),
    ("actor_user_id", None),  # settings.AUTH_USER_MODEL
    ("confirms_id", ("suppression", "ConsentEvent")),
)

REFERENCES_CHECK = """
CREATE OR REPLACE FUNCTION comms_event_references() RETURNS trigger LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan SET jit = off AS $fn$
DECLARE
    v_missing text;
BEGIN
    -- One pass over the statement's rows; each column's distinct ids looked up by one index scan.
    WITH r AS MATERIALIZED (SELECT {arrays} FROM comms_new)
    SELECT CASE
        {cases}
        END INTO v_missing
      FROM r;
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'comms: a consent event names a % that does not exist', v_missing
            USING ERRCODE = 'foreign_key_violation', COLUMN = v_missing;
    END IF;
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS consentevent_references ON suppression_consentevent;
CREATE TRIGGER consentevent_references AFTER INSERT ON suppression_consentevent
    REFERENCING NEW TABLE AS comms_new FOR EACH STATEMENT EXECUTE FUNCTION comms_event_references();
"""

REFERENCED_GUARD = """
CREATE OR REPLACE FUNCTION comms_refuse_referenced_change() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$
DECLARE
    v_column text;
    v_named boolean;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'comms: % on % runs only in READ COMMITTED (it must see every committed consent event)',
            TG_OP, TG_TABLE_NAME USING ERRCODE = 'feature_not_supported';
    END IF;
    IF TG_LEVEL = 'STATEMENT' THEN
        -- Before any row is locked: waits for every append in flight, holds new ones until this
        -- transaction ends. (Taken per row, after the row's lock, it would deadlock with an
        -- append whose commit-time checks wait for that row.)
        LOCK TABLE public.suppression_consentevent IN SHARE MODE;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.id IS NOT DISTINCT FROM OLD.id THEN
        RETURN NEW;
    END IF;
    FOREACH v_column IN ARRAY TG_ARGV LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM public.suppression_consentevent WHERE %I = $1)', v_column)
            INTO v_named USING OLD.id;
        IF v_named THEN
            RAISE EXCEPTION 'comms: % % is named by consent events (%): the ledger keeps it',
                TG_TABLE_NAME, OLD.id, v_column USING ERRCODE = 'foreign_key_violation';
        END IF;
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$fn$;

CREATE OR REPLACE FUNCTION comms_refuse_truncate_referenced() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$
BEGIN
    IF EXISTS (SELECT 1 FROM public.suppression_consentevent) THEN
        RAISE EXCEPTION 'comms: TRUNCATE of % is not allowed: consent events name its rows', TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$fn$;
"""


def _tables(apps):
    """Each referenced table with the event columns that name its rows."""
    tables: dict[str, list[str]] = {}
    for column, model in REFERENCES:
        if model == ("suppression", "ConsentEvent"):
            continue  # events never change (0002)
        app_label, name = model if model else settings.AUTH_USER_MODEL.split(".")
        tables.setdefault(apps.get_model(app_label, name)._meta.db_table, []).append(column)
    return tables


def _references_sql(apps):
    arrays, cases = [], []
    for column, model in REFERENCES:
        app_label, name = model if model else settings.AUTH_USER_MODEL.split(".")
        table = apps.get_model(app_label, name)._meta.db_table
        arrays.append(
            f"coalesce(array_agg(DISTINCT {column}) FILTER (WHERE {column} IS NOT NULL), '{{}}') AS {column}"
        )
        cases.append(
            f"WHEN (SELECT count(*) FROM {table} AS t WHERE t.id = ANY(r.{column})) <> cardinality(r.{column})"
            f" THEN '{column}'"
        )
    return REFERENCES_CHECK.replace("{arrays}", ", ".join(arrays)).replace(
        "{cases}", "\n        ".join(cases)
    )


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        from importlib import import_module

        old = import_module("comms.suppression.migrations.0002_append_only_triggers")
        for statement in old.SQLITE_FORWARD:
            if "ON suppression_consentevent" in statement:
                schema_editor.execute(statement.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS"))
        return
    if vendor != "postgresql":
        return
    schema_editor.execute(_references_sql(apps), params=None)
    schema_editor.execute(REFERENCED_GUARD, params=None)
    for table, columns in _tables(apps).items():
        arguments = ", ".join(f"'{column}'" for column in columns)
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS {table}_ledger_lock ON {table};"
            f" CREATE TRIGGER {table}_ledger_lock BEFORE DELETE OR UPDATE OF id ON {table}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION comms_refuse_referenced_change();"
            f" DROP TRIGGER IF EXISTS {table}_ledger_keeps ON {table};"
            f" CREATE TRIGGER {table}_ledger_keeps BEFORE DELETE OR UPDATE OF id ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION comms_refuse_referenced_change({arguments});"
            f" DROP TRIGGER IF EXISTS {table}_ledger_no_truncate ON {table};"
            f" CREATE TRIGGER {table}_ledger_no_truncate BEFORE TRUNCATE ON {table}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION comms_refuse_truncate_referenced();",
            params=None,
        )
    schema_editor.execute("ALTER TABLE suppression_consentstate SET (fillfactor = 80)", params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in _tables(apps):
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS {table}_ledger_keeps ON {table};"
            f" DROP TRIGGER IF EXISTS {table}_ledger_lock ON {table};"
            f" DROP TRIGGER IF EXISTS {table}_ledger_no_truncate ON {table};",
            params=None,
        )
    schema_editor.execute(
        "DROP TRIGGER IF EXISTS consentevent_references ON suppression_consentevent;"
        " DROP FUNCTION IF EXISTS comms_event_references();"
        " DROP FUNCTION IF EXISTS comms_refuse_referenced_change();"
        " DROP FUNCTION IF EXISTS comms_refuse_truncate_referenced();"
        " ALTER TABLE suppression_consentstate RESET (fillfactor);",
        params=None,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0003_verbose_names"),
        ("suppression", "0018_import_key_one_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="consentevent",
            name="event_unique_prev_per_chain",
        ),
        migrations.RemoveConstraint(
            model_name="consentevent",
            name="event_unique_hash",
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="actor_contact",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="contacts.contact",
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="actor_user",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="brand",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="contacts.brand",
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="confirms",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="suppression.consentevent",
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="contact",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="contacts.contact",
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="notice",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="suppression.purposenotice",
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="purpose",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="suppression.purpose",
            ),
        ),
        migrations.RunPython(forward, backward),
    ]
