"""The ledger keeps the number of chains it runs on (``LedgerLayout``, one row), and every append
follows it.

Before, each process put a contact's events on chain (contact id mod its own
``COMMS_LEDGER_CHAINS``). Two processes started with different values put one contact's events on
two chains, under two head locks: their appends were no longer ordered against each other.

The prelude (``comms_ledger_prelude``, 0015 and 0021) no longer takes the chains from the caller.
It takes the events' contacts (``p_contacts``, as before), whether an event names no contact
(``p_contactless``: chain 0), and the caller's ``COMMS_LEDGER_CHAINS`` (``p_default_chains``), and
then, before the heads:

1. takes ROW SHARE on the chain heads' table, the lock a change of the count waits for
   (``appending.ledger_chains_set`` takes EXCLUSIVE: it waits for the appends in flight and holds
   new ones until it commits);
2. reads the count (a fresh snapshot, after that lock). On a database where no release has set
   it, it records ``p_default_chains`` (``ON CONFLICT DO NOTHING``: two first appends agree on the
   first one's value);
3. locks the heads of the chains the contacts are on by that count, as before.

It answers the count it used (``chains``); the caller hash-chains by it. Everything else is 0021's
text. The service role may read the row and add it where it is missing, never change or delete it
(``comms.core.dbroles``).
"""

from importlib import import_module

from django.db import migrations, models

NEW_SIGNATURE = (
    "comms_ledger_prelude(bigint[], boolean, int, int, bigint[], text[], text[], text, bigint[])"
)
OLD_SIGNATURE = "comms_ledger_prelude(bigint[], int[], int, bigint[], text[], text[], text, bigint[])"

PRELUDE = """
CREATE OR REPLACE FUNCTION comms_ledger_prelude(
    p_lock_keys bigint[], p_contactless boolean, p_default_chains int, p_events int, p_contacts bigint[],
    p_supp_keys text[], p_supp_reasons text[], p_genesis text, p_notice_purposes bigint[]
) RETURNS jsonb LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $fn$
DECLARE
    v_count int;
    v_chains int[];
    v_wanted int;
    v_heads jsonb;
    v_found int;
    v_broken int;
    v_unstarted boolean;
    v_ids jsonb := '[]';
    v_states jsonb := '[]';
    v_supp jsonb := '[]';
    v_notices jsonb := '[]';
BEGIN
    IF cardinality(p_lock_keys) > 0 THEN
        PERFORM pg_advisory_xact_lock(k) FROM (SELECT DISTINCT k FROM unnest(p_lock_keys) AS t(k)) AS d
            ORDER BY k;
    END IF;
    -- The count of chains, read after the lock a change of it waits for (see the migration).
    LOCK TABLE suppression_chainhead IN ROW SHARE MODE;
    SELECT l.chains INTO v_count FROM suppression_ledgerlayout AS l WHERE l.id = 1;
    IF v_count IS NULL THEN
        INSERT INTO suppression_ledgerlayout (id, chains, set_at, set_by)
            VALUES (1, p_default_chains, now(), 'the first append') ON CONFLICT (id) DO NOTHING;
        SELECT l.chains INTO STRICT v_count FROM suppression_ledgerlayout AS l WHERE l.id = 1;
    END IF;
    SELECT array_agg(DISTINCT n ORDER BY n) INTO v_chains
        FROM (SELECT (c % v_count)::int FROM unnest(p_contacts) AS t(c)
              UNION ALL SELECT 0 WHERE p_contactless OR cardinality(p_contacts) = 0) AS u(n);
    v_wanted := cardinality(v_chains);
    SELECT count(*), jsonb_agg(jsonb_build_array(h.chain, h.seq, h.hash) ORDER BY h.chain), bool_or(h.seq = 0)
        INTO v_found, v_heads, v_unstarted
        FROM (SELECT chain, seq, hash FROM suppression_chainhead WHERE chain = ANY(v_chains)
              ORDER BY chain FOR UPDATE) AS h;
    IF v_found < v_wanted THEN
        -- Waits for a concurrent creator's uncommitted head, then does nothing.
        INSERT INTO suppression_chainhead (chain, seq, hash, updated_at)
            SELECT n, 0, p_genesis, now() FROM unnest(v_chains) AS t(n)
            ORDER BY n ON CONFLICT (chain) DO NOTHING;
        SELECT count(*), jsonb_agg(jsonb_build_array(h.chain, h.seq, h.hash) ORDER BY h.chain), bool_or(h.seq = 0)
            INTO v_found, v_heads, v_unstarted
            FROM (SELECT chain, seq, hash FROM suppression_chainhead WHERE chain = ANY(v_chains)
                  ORDER BY chain FOR UPDATE) AS h;
    END IF;
    -- Under a head's lock every event of its chain is behind it: a head at seq 0 on a chain with
    -- events was deleted (and, if just recreated here, the caller's rollback undoes that).
    -- One chain at a time, by its (chain, seq) index: a semi-join would scan the whole ledger.
    -- Only where a head is at seq 0 (a statement costs an executor start on every append).
    IF v_unstarted THEN
        FOR v_broken IN SELECT (h ->> 0)::int FROM jsonb_array_elements(v_heads) AS h
                WHERE (h ->> 1)::bigint = 0 ORDER BY 1 LOOP
            IF EXISTS (SELECT 1 FROM suppression_consentevent AS e WHERE e.chain = v_broken) THEN
                RETURN jsonb_build_object('broken', v_broken);
            END IF;
        END LOOP;
    END IF;
    IF p_events = 1 THEN
        v_ids := jsonb_build_array(nextval('{event_seq}'::regclass));
    ELSIF p_events > 1 THEN
        SELECT jsonb_agg(nextval('{event_seq}'::regclass)) INTO v_ids FROM generate_series(1, p_events);
    END IF;
    IF cardinality(p_contacts) > 0 THEN
        SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') INTO v_states
            FROM suppression_consentstate AS s WHERE s.contact_id = ANY(p_contacts);
    END IF;
    IF cardinality(p_supp_keys) > 0 THEN
        SELECT coalesce(jsonb_agg(jsonb_build_array(x.address_key, x.channel, x.brand_id)), '[]') INTO v_supp
            FROM suppression_suppression AS x
            WHERE x.address_key = ANY(p_supp_keys) AND x.reason = ANY(p_supp_reasons) AND x.lifted_at IS NULL;
    END IF;
    IF cardinality(p_notice_purposes) > 0 THEN
        SELECT coalesce(jsonb_agg(jsonb_build_array(n.purpose_id, n.id, n.version)), '[]') INTO v_notices
            FROM (SELECT DISTINCT ON (purpose_id) purpose_id, id, version FROM suppression_purposenotice
                  WHERE purpose_id = ANY(p_notice_purposes) ORDER BY purpose_id, version DESC) AS n;
    END IF;
    RETURN jsonb_build_object('chains', v_count, 'heads', v_heads, 'ids', v_ids, 'states', v_states,
                              'suppressed', v_supp, 'notices', v_notices);
END
$fn$;
"""


_0021 = import_module("comms.suppression.migrations.0021_prelude_latest_notices")


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {OLD_SIGNATURE}", params=None)
    schema_editor.execute(PRELUDE.replace("{event_seq}", _0021._event_seq(schema_editor)), params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {NEW_SIGNATURE}", params=None)
    schema_editor.execute(_0021._prelude(_0021._event_seq(schema_editor)), params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("suppression", "0022_event_address_index_partial"),
    ]

    operations = [
        migrations.CreateModel(
            name="LedgerLayout",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("chains", models.PositiveIntegerField()),
                ("set_at", models.DateTimeField()),
                ("set_by", models.CharField(max_length=100)),
            ],
            options={
                "verbose_name": "ledger layout",
                "verbose_name_plural": "ledger layout",
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("id", 1)), name="ledgerlayout_one_row"),
                    models.CheckConstraint(
                        condition=models.Q(("chains__gte", 1), ("chains__lte", 1024)),
                        name="ledgerlayout_chains_range",
                    ),
                ],
            },
        ),
        migrations.RunPython(forward, backward),
    ]
