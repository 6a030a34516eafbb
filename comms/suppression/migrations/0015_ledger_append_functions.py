"""An append in two round trips (PostgreSQL): the ledger service calls ``comms_ledger_prelude``
to take its locks and read what it decides on, computes the events (hashes, consent state) in
Python, and calls ``comms_ledger_write`` to write them. Before, an append was eight to ten
statements, each a round trip with its own parse, bind and result handling on both sides; at
many concurrent appends on two cores that overhead, not the work, was the limit.

``comms_ledger_prelude`` runs, in this order, each statement with a fresh snapshot (a VOLATILE
PL/pgSQL function in READ COMMITTED):

1. the exclusive address locks (``pg_advisory_xact_lock``, sorted: withdrawals against senders);
2. the chain heads, row-locked in chain order; a missing head is created at seq 0, and a head at
   seq 0 on a chain that has events is reported as broken (nothing is appended then);
3. event ids drawn from the event table's sequence (the state rows and evidence name them);
4. the consent state rows of the contacts involved, read under the heads' locks, so a decision
   (a grant that must wait for double opt-in) sees every event committed before it;
5. the person-caused active suppressions of the given address keys.

``comms_ledger_write`` inserts the events and their evidence, moves the heads and inserts or
updates the state rows, from JSON arrays. Both are SECURITY INVOKER: the caller's privileges,
the append-only triggers and the state guard apply exactly as to single statements. The UPDATE
and the INSERT of the state name their columns; ``tests/suppression/test_append_functions_pg.py``
checks they are the model's, so a new state column cannot be silently left out.
"""

from django.db import migrations

STATE_UPDATE_COLUMNS = (
    "positive_event_id",
    "positive_order",
    "grant_event_id",
    "grant_basis",
    "grant_actor",
    "grant_actor_contact_id",
    "grant_opt_out_offered",
    "grant_notice_version",
    "grant_occurred_at",
    "pending_event_id",
    "pending_order",
    "withdrawal_event_id",
    "withdrawal_order",
    "objection_event_id",
    "objection_order",
    "restriction_event_id",
    "restriction_order",
    "restricted",
    "updated_at",
)
# A new state row: its level and every column the events determine (the id is the table's).
STATE_INSERT_COLUMNS = ("contact_id", "channel", "purpose_id", *STATE_UPDATE_COLUMNS)

PRELUDE = """
CREATE OR REPLACE FUNCTION comms_ledger_prelude(
    p_lock_keys bigint[], p_chains int[], p_events int, p_contacts bigint[],
    p_supp_keys text[], p_supp_reasons text[], p_genesis text
) RETURNS jsonb LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $fn$
DECLARE
    v_wanted int;
    v_heads jsonb;
    v_found int;
    v_broken int;
    v_ids jsonb := '[]';
    v_states jsonb := '[]';
    v_supp jsonb := '[]';
BEGIN
    IF cardinality(p_lock_keys) > 0 THEN
        PERFORM pg_advisory_xact_lock(k) FROM (SELECT DISTINCT k FROM unnest(p_lock_keys) AS t(k)) AS d
            ORDER BY k;
    END IF;
    SELECT count(DISTINCT n) INTO v_wanted FROM unnest(p_chains) AS t(n);
    SELECT count(*), jsonb_agg(jsonb_build_array(h.chain, h.seq, h.hash) ORDER BY h.chain)
        INTO v_found, v_heads
        FROM (SELECT chain, seq, hash FROM suppression_chainhead WHERE chain = ANY(p_chains)
              ORDER BY chain FOR UPDATE) AS h;
    IF v_found < v_wanted THEN
        -- Waits for a concurrent creator's uncommitted head, then does nothing.
        INSERT INTO suppression_chainhead (chain, seq, hash, updated_at)
            SELECT DISTINCT n, 0, p_genesis, now() FROM unnest(p_chains) AS t(n)
            ORDER BY n ON CONFLICT (chain) DO NOTHING;
        SELECT count(*), jsonb_agg(jsonb_build_array(h.chain, h.seq, h.hash) ORDER BY h.chain)
            INTO v_found, v_heads
            FROM (SELECT chain, seq, hash FROM suppression_chainhead WHERE chain = ANY(p_chains)
                  ORDER BY chain FOR UPDATE) AS h;
    END IF;
    -- Under a head's lock every event of its chain is behind it: a head at seq 0 on a chain with
    -- events was deleted (and, if just recreated here, the caller's rollback undoes that).
    -- One chain at a time, by its (chain, seq) index: a semi-join would scan the whole ledger.
    FOR v_broken IN SELECT (h ->> 0)::int FROM jsonb_array_elements(v_heads) AS h
            WHERE (h ->> 1)::bigint = 0 ORDER BY 1 LOOP
        IF EXISTS (SELECT 1 FROM suppression_consentevent AS e WHERE e.chain = v_broken) THEN
            RETURN jsonb_build_object('broken', v_broken);
        END IF;
    END LOOP;
    IF p_events > 0 THEN
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
    RETURN jsonb_build_object('heads', v_heads, 'ids', v_ids, 'states', v_states, 'suppressed', v_supp);
END
$fn$;
"""

WRITE = """
CREATE OR REPLACE FUNCTION comms_ledger_write(
    p_events jsonb, p_evidence jsonb, p_heads jsonb, p_state_new jsonb, p_state_changed jsonb
) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $fn$
BEGIN
    INSERT INTO suppression_consentevent
        SELECT r.* FROM jsonb_populate_recordset(NULL::suppression_consentevent, p_events) AS r;
    IF jsonb_array_length(p_evidence) > 0 THEN
        INSERT INTO suppression_consentevidence
            SELECT r.* FROM jsonb_populate_recordset(NULL::suppression_consentevidence, p_evidence) AS r;
    END IF;
    UPDATE suppression_chainhead AS h SET seq = u.seq, hash = u.hash, updated_at = u.updated_at
        FROM jsonb_to_recordset(p_heads) AS u(chain int, seq bigint, hash text, updated_at timestamptz)
        WHERE h.chain = u.chain;
    IF jsonb_array_length(p_state_new) > 0 THEN
        INSERT INTO suppression_consentstate ({insert_columns})
            SELECT {insert_values} FROM jsonb_populate_recordset(NULL::suppression_consentstate, p_state_new) AS u;
    END IF;
    IF jsonb_array_length(p_state_changed) > 0 THEN
        UPDATE suppression_consentstate AS t SET ({columns}) = ({values})
            FROM jsonb_populate_recordset(NULL::suppression_consentstate, p_state_changed) AS u
            WHERE t.id = u.id;
    END IF;
END
$fn$;
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('suppression_consentevent', 'id')")
        event_seq = cursor.fetchone()[0]
    schema_editor.execute(PRELUDE.replace("{event_seq}", event_seq), params=None)
    schema_editor.execute(
        WRITE.replace("{insert_columns}", ", ".join(STATE_INSERT_COLUMNS))
        .replace("{insert_values}", ", ".join(f"u.{name}" for name in STATE_INSERT_COLUMNS))
        .replace("{columns}", ", ".join(STATE_UPDATE_COLUMNS))
        .replace("{values}", ", ".join(f"u.{name}" for name in STATE_UPDATE_COLUMNS)),
        params=None,
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP FUNCTION IF EXISTS comms_ledger_prelude(bigint[], int[], int, bigint[], text[], text[], text)")
    schema_editor.execute("DROP FUNCTION IF EXISTS comms_ledger_write(jsonb, jsonb, jsonb, jsonb, jsonb)")


class Migration(migrations.Migration):
    dependencies = [
        ("suppression", "0014_verbose_names"),
    ]

    operations = [migrations.RunPython(create, drop)]
