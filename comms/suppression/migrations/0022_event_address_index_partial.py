"""The events' address index keeps only events without a contact (``WHERE contact_id IS NULL``):
a person's data export looks those up by address (a bounce or an SMS stop of their address);
every other event is found by its contact. It was the third random-key index every append wrote
(see 0019), and a full-page write after every checkpoint.

Built without holding appends: on PostgreSQL the new index is made ``CONCURRENTLY`` under a
temporary name, the old one dropped ``CONCURRENTLY`` and the new one renamed, so a release on a
ledger of millions of events never blocks a withdrawal for the build (a plain ``CREATE INDEX``
takes a lock that stops every insert). Hence a migration of its own, outside a transaction; each
step may be run again (a build that failed leaves an invalid index, dropped first).
"""

from django.db import migrations, models

NEW = "event_address_key_partial"


def _index_exists(cursor, name: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return bool(cursor.fetchone()[0])


def forward(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS event_address_key")
        schema_editor.execute(
            "CREATE INDEX event_address_key ON suppression_consentevent (address_key) WHERE contact_id IS NULL"
        )
        return
    with connection.cursor() as cursor:
        if _index_exists(cursor, NEW):  # a build that failed half-way: start it again
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NEW}")
        cursor.execute(
            f"CREATE INDEX CONCURRENTLY {NEW} ON suppression_consentevent (address_key) WHERE contact_id IS NULL"
        )
        cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS event_address_key")
        cursor.execute(f"ALTER INDEX {NEW} RENAME TO event_address_key")


def backward(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS event_address_key")
        schema_editor.execute("CREATE INDEX event_address_key ON suppression_consentevent (address_key)")
        return
    with connection.cursor() as cursor:
        if _index_exists(cursor, NEW):
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {NEW}")
        cursor.execute(f"CREATE INDEX CONCURRENTLY {NEW} ON suppression_consentevent (address_key)")
        cursor.execute("DROP INDEX CONCURRENTLY IF EXISTS event_address_key")
        cursor.execute(f"ALTER INDEX {NEW} RENAME TO event_address_key")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("suppression", "0021_prelude_latest_notices"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="consentevent", name="event_address_key"),
                migrations.AddIndex(
                    model_name="consentevent",
                    index=models.Index(
                        condition=models.Q(("contact__isnull", True)),
                        fields=["address_key"],
                        name="event_address_key",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
