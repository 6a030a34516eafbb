"""The append's prelude (``comms_ledger_prelude``, 0015) also answers the latest notice version of
the purposes a grant names, read in the same statement: a grant that points at its purpose's
current notice no longer looks it up in a round trip of its own before its transaction (one
statement fewer per grant; with eight concurrent clients on two cores every round trip is two
context switches). The notice row itself is immutable (0002: notice versions are append-only),
so the service keeps the instances it has loaded by (purpose, version).

The function takes one more argument (``p_notice_purposes bigint[]``) and answers one more key
(``notices``: ``[[purpose_id, notice_id, version], …]``, the highest version of each purpose that
has one);
everything else is 0015's text.
"""

from importlib import import_module

from django.db import migrations

_0015 = import_module("comms.suppression.migrations.0015_ledger_append_functions")

OLD_SIGNATURE = "comms_ledger_prelude(bigint[], int[], int, bigint[], text[], text[], text)"
NEW_SIGNATURE = "comms_ledger_prelude(bigint[], int[], int, bigint[], text[], text[], text, bigint[])"


def _prelude(event_seq: str) -> str:
    text = _0015.PRELUDE.replace("{event_seq}", event_seq)
    for old, new in (
        (
            "    p_supp_keys text[], p_supp_reasons text[], p_genesis text\n) RETURNS jsonb",
            "    p_supp_keys text[], p_supp_reasons text[], p_genesis text, p_notice_purposes bigint[]\n) RETURNS jsonb",
        ),
        ("    v_supp jsonb := '[]';\n", "    v_supp jsonb := '[]';\n    v_notices jsonb := '[]';\n"),
        (
            "    RETURN jsonb_build_object('heads', v_heads, 'ids', v_ids, 'states', v_states, 'suppressed', v_supp);",
            "    IF cardinality(p_notice_purposes) > 0 THEN\n"
            "        SELECT coalesce(jsonb_agg(jsonb_build_array(n.purpose_id, n.id, n.version)), '[]') INTO v_notices\n"
            "            FROM (SELECT DISTINCT ON (purpose_id) purpose_id, id, version FROM suppression_purposenotice\n"
            "                  WHERE purpose_id = ANY(p_notice_purposes) ORDER BY purpose_id, version DESC) AS n;\n"
            "    END IF;\n"
            "    RETURN jsonb_build_object('heads', v_heads, 'ids', v_ids, 'states', v_states, 'suppressed', v_supp,\n"
            "                              'notices', v_notices);",
        ),
    ):
        if old not in text:
            raise RuntimeError(f"0015's prelude changed: {old!r} not found")
        text = text.replace(old, new)
    return text


def _event_seq(schema_editor) -> str:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('suppression_consentevent', 'id')")
        return str(cursor.fetchone()[0])


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {OLD_SIGNATURE}", params=None)
    schema_editor.execute(_prelude(_event_seq(schema_editor)), params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {NEW_SIGNATURE}", params=None)
    schema_editor.execute(_0015.PRELUDE.replace("{event_seq}", _event_seq(schema_editor)), params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("suppression", "0020_state_and_companions_references"),
    ]

    operations = [migrations.RunPython(forward, backward)]
