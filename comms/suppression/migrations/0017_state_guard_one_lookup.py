"""The consent state's guard (``0012``) with the same rules in one query and one look-up of the
events it names.

0012's guard looked each named event up by a LATERAL subquery per state row and kind (nine
re-scans per row, in four queries): on a bulk import that was 26 µs of the 115 µs PostgreSQL
spent per row, more than the state row's own insert. Now the events the statement's rows name
(only the columns that changed) are fetched by one index scan over an array of their ids
(``id = ANY(…)``), then the grants that confirmations confirm by a second, and every rule is
checked against those two small sets by hash joins — never a join over the whole ledger, since
the sets hold only what the rows name. One statement reports all three findings; the messages
and their order of precedence are 0012's.

How it is planned matters as much as the query: a plan made for one row (nested loops) that
met a thousand would be quadratic. A statement of up to ``FEW_ROWS`` state rows (every single
append) runs the static query, with one generic plan per session made for a few rows
(``plan_cache_mode = force_generic_plan`` on the function); a larger one runs the same text
through ``EXECUTE``, planned for its own row counts, so a bulk append is always hash-joined.
The session setting ``comms.guard_few_rows`` moves that line (the tests set it to 0 to check
every rule through ``EXECUTE`` too); either path applies every rule.
``jit = off`` on the function: a bulk statement's estimated cost can pass ``jit_above_cost``, and
compiling the query (seen: 1.4 s) takes far longer than the check.

The rules themselves are unchanged (0012's docstring lists them); ``test_state_guard_pg.py``
refuses each one for the service role.
"""

from django.db import migrations

_ORDER = (
    "lpad(((extract(epoch FROM e.occurred_at) * 1000000)::bigint + 62135596800000000)::text, 20, '0')"
    " || lpad(e.chain::text, 5, '0') || lpad(e.seq::text, 19, '0')"
)
_GRANT = (
    "n.grant_event_id, n.grant_basis, n.grant_actor, n.grant_actor_contact_id, n.grant_opt_out_offered,"
    " n.grant_notice_version, n.grant_occurred_at"
)
_COLUMNS = (
    "x.id, x.contact_id, x.channel, x.purpose_id, x.action, x.pending_confirmation, x.occurred_at,"
    " x.chain, x.seq, x.confirms_id, x.basis, x.actor, x.actor_contact_id, x.opt_out_offered, x.notice_id"
)

_QUERY = r"""
    WITH rows AS MATERIALIZED (
        SELECT n.*, {old_missing} AS o_missing,
               o.contact_id AS o_contact_id, o.channel AS o_channel, o.purpose_id AS o_purpose_id,
               o.positive_event_id AS o_positive_event_id, o.positive_order AS o_positive_order,
               o.pending_event_id AS o_pending_event_id, o.pending_order AS o_pending_order,
               o.withdrawal_event_id AS o_withdrawal_event_id, o.withdrawal_order AS o_withdrawal_order,
               o.objection_event_id AS o_objection_event_id, o.objection_order AS o_objection_order,
               o.restriction_event_id AS o_restriction_event_id, o.restriction_order AS o_restriction_order,
               o.restricted AS o_restricted,
               ({scope_changed}) AS scope_changed,
               ({old_missing} OR (n.positive_event_id, {grant}) IS DISTINCT FROM
                (o.positive_event_id, {old_grant})) AS grant_changed,
               ({old_missing} OR n.restricted IS DISTINCT FROM o.restricted
                OR n.restriction_event_id IS DISTINCT FROM o.restriction_event_id) AS restricted_changed
          FROM comms_new n {old_join}
    ), kinds AS MATERIALIZED (
        SELECT r.contact_id, r.channel, r.purpose_id, k.*
          FROM rows r
         CROSS JOIN LATERAL (VALUES
            ('positive', r.positive_event_id, r.positive_order, r.o_positive_event_id, r.o_positive_order, ARRAY['grant', 'confirm']),
            ('pending', r.pending_event_id, r.pending_order, r.o_pending_event_id, r.o_pending_order, ARRAY['pending_grant']),
            ('withdrawal', r.withdrawal_event_id, r.withdrawal_order, r.o_withdrawal_event_id, r.o_withdrawal_order, ARRAY['withdraw']),
            ('objection', r.objection_event_id, r.objection_order, r.o_objection_event_id, r.o_objection_order, ARRAY['object']),
            ('restriction', r.restriction_event_id, r.restriction_order, r.o_restriction_event_id, r.o_restriction_order,
             ARRAY['restrict', 'lift_restriction'])
         ) AS k(name, ev, ord, old_ev, old_ord, kinds)
         WHERE (k.ev IS DISTINCT FROM k.old_ev OR k.ord IS DISTINCT FROM k.old_ord)
           -- An empty kind (no event, no order) can break a rule only against an old value.
           AND (k.ev IS NOT NULL OR k.ord <> '' OR k.old_ev IS NOT NULL OR COALESCE(k.old_ord, '') <> '')
    ), named AS MATERIALIZED (
        SELECT {columns} FROM suppression_consentevent x
         WHERE x.id = ANY(ARRAY(
            SELECT ev FROM kinds WHERE ev IS NOT NULL
            UNION SELECT positive_event_id FROM rows WHERE grant_changed AND positive_event_id IS NOT NULL
            UNION SELECT restriction_event_id FROM rows WHERE restricted_changed AND restriction_event_id IS NOT NULL))
    ), confirmed AS MATERIALIZED (
        SELECT {columns} FROM suppression_consentevent x
         WHERE x.id = ANY(ARRAY(
            SELECT confirms_id FROM named WHERE action = 'confirm' AND confirms_id IS NOT NULL))
    ), kind_findings AS (
        SELECT k.name,
               (k.ord < COALESCE(k.old_ord, '') OR (k.ord = '' AND k.ev IS NOT NULL)
                OR (k.ord = k.old_ord AND k.ev IS DISTINCT FROM k.old_ev)) AS backward
          FROM kinds k LEFT JOIN named e ON e.id = k.ev
         WHERE k.ord < COALESCE(k.old_ord, '')
            OR (k.ord = '' AND k.ev IS NOT NULL)
            OR (k.ord = k.old_ord AND k.ev IS DISTINCT FROM k.old_ev)
            OR (k.ord <> '' AND (e.id IS NULL OR e.contact_id IS DISTINCT FROM k.contact_id
                OR e.channel <> k.channel OR e.purpose_id IS DISTINCT FROM k.purpose_id
                OR NOT ((CASE WHEN e.action = 'grant' AND e.pending_confirmation THEN 'pending_grant'
                             ELSE e.action END) = ANY(k.kinds))
                OR ({order}) <> k.ord))
    )
    SELECT (SELECT count(*) FROM rows WHERE scope_changed),
           (SELECT count(*) FROM kind_findings),
           (SELECT bool_or(backward) FROM kind_findings),
           (SELECT name FROM kind_findings ORDER BY backward DESC LIMIT 1),
           (SELECT count(*)
              FROM rows n
              LEFT JOIN named p ON p.id = n.positive_event_id
              LEFT JOIN (SELECT * FROM named UNION ALL SELECT * FROM confirmed) g
                ON g.id = CASE WHEN p.action = 'confirm' THEN p.confirms_id ELSE p.id END
              LEFT JOIN suppression_purposenotice pn ON pn.id = g.notice_id
             WHERE n.grant_changed
               AND CASE WHEN n.positive_event_id IS NULL
                        THEN (n.grant_event_id IS NOT NULL OR n.grant_basis <> '' OR n.grant_actor <> ''
                              OR n.grant_actor_contact_id IS NOT NULL OR n.grant_opt_out_offered
                              OR n.grant_notice_version IS NOT NULL OR n.grant_occurred_at IS NOT NULL)
                        ELSE (g.id IS NULL OR ({grant}) IS DISTINCT FROM
                              (g.id, g.basis, g.actor, g.actor_contact_id, g.opt_out_offered, pn.version, g.occurred_at))
                   END),
           (SELECT count(*)
              FROM rows n LEFT JOIN named r ON r.id = n.restriction_event_id
             WHERE n.restricted_changed
               AND n.restricted IS DISTINCT FROM COALESCE(r.action = 'restrict', false))
"""

_GUARD_BODY = r"""
DECLARE
    v_rows bigint;
    v_scope bigint;
    v_kinds bigint;
    v_backward boolean;
    v_name text;
    v_grants bigint;
    v_restricted bigint;
BEGIN
    SELECT count(*) INTO v_rows FROM comms_new;
    -- comms.guard_few_rows: the tests run every rule through both paths (the same text).
    IF v_rows <= coalesce(nullif(current_setting('comms.guard_few_rows', true), '')::int, {few}) THEN
        {query}
          INTO v_scope, v_kinds, v_backward, v_name, v_grants, v_restricted;
    ELSE
        EXECUTE $guard${query}$guard$
           INTO v_scope, v_kinds, v_backward, v_name, v_grants, v_restricted;
    END IF;

    IF v_scope > 0 THEN
        RAISE EXCEPTION 'comms: a consent state row keeps its scope' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_kinds > 0 THEN
        IF v_backward THEN
            RAISE EXCEPTION 'comms: consent state %.% may only move forward', 'suppression_consentstate', v_name
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RAISE EXCEPTION 'comms: consent state % does not name an event of its scope in its place', v_name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_grants > 0 THEN
        RAISE EXCEPTION 'comms: consent state grant columns are not those of the grant the positive event rests on'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF v_restricted > 0 THEN
        RAISE EXCEPTION 'comms: consent state restricted is not what its restriction event says'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
"""

# Up to this many rows a statement runs the static query, planned once per session for a few
# rows (a single append's one state row); above it, the same text through EXECUTE, planned for the statement's own row counts, so a bulk
# append's joins are hash joins and never nested loops over thousands of rows.
FEW_ROWS = 8

_SCOPE_CHANGED = (
    "o.id IS NULL OR n.contact_id <> o.contact_id OR n.channel <> o.channel"
    " OR n.purpose_id IS DISTINCT FROM o.purpose_id"
)


def _body(old_join: str, old_missing: str, scope_changed: str) -> str:
    query = _QUERY.format(
        old_join=old_join,
        old_missing=old_missing,
        scope_changed=scope_changed,
        order=_ORDER,
        grant=_GRANT,
        old_grant=_GRANT.replace("n.", "o."),
        columns=_COLUMNS,
    )
    return _GUARD_BODY.replace("{few}", str(FEW_ROWS)).replace("{query}", query)


# The function's settings: its static query keeps one plan (see the module), and no statement
# of the guard is worth compiling (a bulk statement's estimated cost can pass jit_above_cost,
# and compiling takes longer than the check).
_SETTINGS = "SET plan_cache_mode = force_generic_plan SET jit = off"

PG_GUARD = f"""
CREATE OR REPLACE FUNCTION comms_state_guard_insert() RETURNS trigger LANGUAGE plpgsql {_SETTINGS} AS $$
{_body("LEFT JOIN suppression_consentstate o ON false", "true", "false")}
$$;

CREATE OR REPLACE FUNCTION comms_state_guard_update() RETURNS trigger LANGUAGE plpgsql {_SETTINGS} AS $$
{_body("LEFT JOIN comms_old o ON o.id = n.id", "o.id IS NULL", _SCOPE_CHANGED)}
$$;
"""


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_GUARD, params=None)


def previous(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from importlib import import_module

    old = import_module("comms.suppression.migrations.0012_state_guard_complete")
    body_insert = old._body("LEFT JOIN suppression_consentstate o ON false", "true", "false")
    body_update = old._body("LEFT JOIN comms_old o ON o.id = n.id", "o.id IS NULL", old._SCOPE_CHANGED)
    schema_editor.execute(
        f"CREATE OR REPLACE FUNCTION comms_state_guard_insert() RETURNS trigger AS $$\n{body_insert}\n$$ LANGUAGE plpgsql;\n"
        f"CREATE OR REPLACE FUNCTION comms_state_guard_update() RETURNS trigger AS $$\n{body_update}\n$$ LANGUAGE plpgsql;",
        params=None,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("suppression", "0016_fewer_index_writes"),
    ]

    operations = [migrations.RunPython(guard, previous)]
