"""Nobody can wipe the ledger: TRUNCATE is refused by triggers (even to the owner), and the service
role the suite runs as may not TRUNCATE, DELETE, UPDATE an event, ALTER a table or switch a
trigger off at all (comms/core/dbroles.py grants it only what the code does)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError, ProgrammingError

from comms.contacts.models import Contact
from comms.core import dbroles
from comms.core.dbroles import LEDGER_TABLE_PRIVILEGES, RoleError, service_role_grant, service_role_problems
from comms.suppression import selectors, services
from comms.suppression.models import ChainHead, ConsentEvent, ConsentEvidence, Purpose, Suppression
from comms.suppression.services import Evidence, Principal
from tests.db_owner import as_owner, owner_connection

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="TRUNCATE triggers and roles are PostgreSQL's",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
# The tables migration 0010 guards against TRUNCATE.
GUARDED = [
    "suppression_consentevent",
    "suppression_consentevidence",
    "suppression_purposenotice",
    "suppression_chainhead",
    "suppression_suppression",
    "suppression_ledgercheckpoint",
    "suppression_prooffile",
    "rights_auditentry",
    "suppression_consentstate",
    "suppression_consentimportkey",
]
TRUNCATE_REFUSED = "TRUNCATE of .* is not allowed"
DENIED = "permission denied for table"
NOT_OWNER = "must be owner of (table|relation)"


def _execute(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _refused(match: str, action: Callable[[], object]) -> None:
    with pytest.raises(ProgrammingError, match=match), transaction.atomic():
        action()


@pytest.fixture
def ledger(
    make_contact: Callable[..., Contact], purpose: Purpose, staff: Principal, person: Principal
) -> dict[str, int]:
    """A few events with evidence, a suppression, a checkpoint and an audit entry."""
    for _ in range(3):
        contact = make_contact()
        services.consent_grant(
            contact=contact,
            channel="email",
            purpose=purpose,
            basis="consent",
            source="front_desk",
            principal=staff,
            evidence=Evidence(ip="192.0.2.30", user_agent="tablet"),
        )
        services.consent_withdraw(
            contact=contact, channel="email", purpose=None, source="unsubscribe_link", principal=person
        )
    services.ledger_checkpoint()
    # Run the deferred foreign-key checks now: PostgreSQL refuses any TRUNCATE (before its
    # triggers are asked) while such checks are queued, which would hide what is tested here.
    _execute("SET CONSTRAINTS ALL IMMEDIATE")
    return _counts()


def _counts() -> dict[str, int]:
    return {
        "events": ConsentEvent.objects.count(),
        "evidence": ConsentEvidence.objects.count(),
        "suppressions": Suppression.objects.count(),
        "heads": ChainHead.objects.count(),
    }


# --- TRUNCATE is refused, even to the owner ----------------------------------------------------


@pytest.mark.parametrize("cascade", ["", " CASCADE"], ids=["plain", "cascade"])
@pytest.mark.parametrize("table", GUARDED)
def test_the_owner_cannot_truncate_an_append_only_table(
    ledger: dict[str, int], table: str, cascade: str
) -> None:
    # Without CASCADE, a table that others reference is already refused by its foreign keys;
    # with CASCADE only the trigger stands in the way.
    match = TRUNCATE_REFUSED if cascade else f"{TRUNCATE_REFUSED}|referenced in a foreign key constraint"
    with pytest.raises(DatabaseError, match=match), transaction.atomic():
        as_owner(f"TRUNCATE {table}{cascade}")
    assert _counts() == ledger


@pytest.mark.parametrize(
    "statement",
    [
        # The statement: the cascade would empty suppressions and deliveries with it.
        "TRUNCATE suppression_consentevent CASCADE",
        # Tables the ledger references: their cascade reaches the ledger and is refused there.
        "TRUNCATE contacts_contact CASCADE",
        "TRUNCATE contacts_brand CASCADE",
        "TRUNCATE suppression_purpose CASCADE",
        # Several at once, a guarded one among them.
        "TRUNCATE campaigns_delivery, suppression_suppression CASCADE",
    ],
)
def test_a_truncate_that_reaches_the_ledger_through_a_cascade_is_refused(
    ledger: dict[str, int], statement: str
) -> None:
    _refused(TRUNCATE_REFUSED, lambda: as_owner(statement))
    assert _counts() == ledger
    assert selectors.ledger_verify().ok


def test_the_owner_cannot_delete_a_chain_head_or_an_evidence_row(ledger: dict[str, int]) -> None:
    _refused("append-only", lambda: as_owner("DELETE FROM suppression_chainhead"))
    _refused("append-only", lambda: as_owner("DELETE FROM suppression_consentevidence"))
    assert _counts() == ledger


# --- the service role holds only what the code needs ---------------------------------------------


def test_the_suite_runs_as_a_role_that_is_neither_superuser_nor_owner(db: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls"
            " FROM pg_roles WHERE rolname = current_user"
        )
        user, *attributes = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE pg_get_userbyid(relowner) = current_user"
        )
        owned = cursor.fetchone()[0]
    assert user == f"{django_settings.DATABASES['default']['NAME']}_app"
    assert attributes == [False, False, False, False]
    assert owned == 0


@pytest.mark.parametrize(
    ("statement", "match"),
    [
        ("TRUNCATE suppression_consentevent", DENIED),
        ("TRUNCATE suppression_consentevent CASCADE", DENIED),
        ("TRUNCATE campaigns_delivery", DENIED),
        ("DELETE FROM suppression_consentevent", DENIED),
        ("UPDATE suppression_consentevent SET action = 'withdraw'", DENIED),
        ("DELETE FROM suppression_suppression", DENIED),
        ("DELETE FROM suppression_consentevidence", DENIED),
        ("DELETE FROM suppression_chainhead", DENIED),
        ("UPDATE suppression_ledgercheckpoint SET heads = '{}'", DENIED),
        ("DELETE FROM suppression_ledgercheckpoint", DENIED),
        ("UPDATE suppression_purposenotice SET text = 'rewritten'", DENIED),
        ("DELETE FROM rights_auditentry", DENIED),
        ("UPDATE rights_auditentry SET outcome = 'ok'", DENIED),
        ("DELETE FROM django_migrations", DENIED),
        ("ALTER TABLE suppression_consentevent DISABLE TRIGGER consentevent_append_only", NOT_OWNER),
        ("ALTER TABLE suppression_consentevent DISABLE TRIGGER ALL", NOT_OWNER),
        ("ALTER TABLE suppression_suppression DISABLE TRIGGER suppression_lift_only", NOT_OWNER),
        ("ALTER TABLE suppression_consentevent ADD COLUMN note text", NOT_OWNER),
        ("ALTER TABLE suppression_consentevent OWNER TO CURRENT_USER", NOT_OWNER),
        ("DROP TRIGGER consentevent_append_only ON suppression_consentevent", NOT_OWNER),
        ("DROP TABLE suppression_consentevent CASCADE", NOT_OWNER),
        (
            "CREATE TRIGGER sneaky BEFORE INSERT ON suppression_consentevent "
            "FOR EACH ROW EXECUTE FUNCTION comms_refuse_change()",
            DENIED,
        ),
        (
            "CREATE OR REPLACE FUNCTION comms_refuse_truncate() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END; $$",
            "must be owner of function|permission denied for schema",
        ),
        ("CREATE TABLE public.comms_scratch (id int)", "permission denied for schema"),
        ("SET session_replication_role = replica", "permission denied to set parameter"),
    ],
)
def test_the_service_role_cannot_wipe_rewrite_or_unguard_the_ledger(
    ledger: dict[str, int], statement: str, match: str
) -> None:
    _refused(match, lambda: _execute(statement))
    assert _counts() == ledger


def test_the_service_role_still_does_what_the_code_does(
    ledger: dict[str, int], make_contact: Callable[..., Contact], staff: Principal
) -> None:
    """Appends, the lift of a suppression, the redaction of evidence, a checkpoint: all allowed."""
    bounce, row = services.suppression_add(
        channel="email", address="gone@example.no", reason="hard_bounce", source="admin", principal=staff
    )
    assert row is not None
    services.suppression_lift(suppression=row, source="admin", principal=staff)
    assert services.evidence_redact(events=ConsentEvidence.objects.values_list("event_id", flat=True)) == 3
    services.ledger_checkpoint()
    assert selectors.ledger_verify().ok
    assert service_role_problems(connection=connection, role=connection.settings_dict["USER"]) == []


def test_db_roles_check_reports_the_suite_role_as_least_privileged(db: Any) -> None:
    out = StringIO()
    call_command("db_roles", "--check", "--database", "default", stdout=out)
    assert "holds exactly the service privileges" in out.getvalue()


# --- the grants are computed from one list and are idempotent --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_granting_a_new_service_role_is_idempotent_and_follows_the_list() -> None:
    role = f"{connection.settings_dict['NAME']}_grant_probe"[:63]
    with owner_connection() as owner:
        try:
            first = service_role_grant(connection=owner, role=role, password="probe-password-1")
            again = service_role_grant(connection=owner, role=role)
            assert (first.created, again.created) == (True, False)
            assert first.tables == again.tables
            assert first.tables["suppression_consentevent"] == ("SELECT", "INSERT")
            assert first.tables["suppression_suppression"] == ("SELECT", "INSERT", "UPDATE")
            assert first.tables["contacts_contact"] == ("SELECT", "INSERT", "UPDATE", "DELETE")
            # Listed tables that do not exist yet are skipped, not an error.
            missing = set(first.missing_ledger_tables)
            assert missing == {t for t in LEDGER_TABLE_PRIVILEGES if t not in first.tables}
            assert service_role_problems(connection=owner, role=role) == []

            # A table a later migration creates is usable by the role at once (default privileges),
            # without TRUNCATE; the next grant run gives a listed one exactly its privileges.
            with owner.cursor() as cursor:
                cursor.execute("CREATE TABLE comms_future_table (id int)")
            try:
                with owner.cursor() as cursor:
                    for privilege, expected in (("DELETE", True), ("TRUNCATE", False), ("TRIGGER", False)):
                        cursor.execute(
                            "SELECT has_table_privilege(%s, 'comms_future_table', %s)", [role, privilege]
                        )
                        assert cursor.fetchone()[0] is expected, privilege
            finally:
                with owner.cursor() as cursor:
                    cursor.execute("DROP TABLE comms_future_table")

            with pytest.raises(RoleError, match="must not be the owner"):
                service_role_grant(connection=owner, role=owner.settings_dict["USER"])
        finally:
            with owner.cursor() as cursor:
                cursor.execute(f"DROP OWNED BY {owner.ops.quote_name(role)}")
                cursor.execute(f"DROP ROLE IF EXISTS {owner.ops.quote_name(role)}")


def test_the_privilege_list_names_the_gate_state_tables_ahead_of_them() -> None:
    assert dbroles.table_privileges("suppression_consentstate") == ("SELECT", "INSERT", "UPDATE")
    assert dbroles.table_privileges("suppression_consentimportkey") == ("SELECT", "INSERT")
    assert dbroles.table_privileges("campaigns_campaign") == ("SELECT", "INSERT", "UPDATE", "DELETE")


# --- settings: two URLs ----------------------------------------------------------------------------


def _check(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "COMMS_", "DATABASE_"))}
    base.update(
        COMMS_ENV="production",
        DJANGO_SECRET_KEY="x" * 60,
        COMMS_ADDRESS_KEY_SECRET="y" * 50,
        DJANGO_ALLOWED_HOSTS="comms.example.no",
        COMMS_PUBLIC_BASE_URL="https://comms.example.no",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def test_production_needs_a_separate_owner_url_for_migrations() -> None:
    service = "postgres://comms_app:pw@127.0.0.1:5432/comms"
    assert "DATABASE_MIGRATE_URL must be set" in _check(DATABASE_URL=service).stderr
    same_role = _check(DATABASE_URL=service, DATABASE_MIGRATE_URL=service)
    assert "must use different roles" in same_role.stderr
    other_db = _check(DATABASE_URL=service, DATABASE_MIGRATE_URL="postgres://owner@127.0.0.1:5432/other")
    assert "same database" in other_db.stderr
    ok = _check(DATABASE_URL=service, DATABASE_MIGRATE_URL="postgres://comms_owner:pw@127.0.0.1:5432/comms")
    assert ok.returncode == 0, ok.stderr


def test_production_refuses_an_anchor_file_without_a_secret_to_sign_it() -> None:
    urls = {
        "DATABASE_URL": "postgres://comms_app:pw@127.0.0.1:5432/comms",
        "DATABASE_MIGRATE_URL": "postgres://comms_owner:pw@127.0.0.1:5432/comms",
    }
    refused = _check(**urls, COMMS_LEDGER_ANCHOR_FILE="/var/lib/comms/anchors.jsonl")
    assert "COMMS_LEDGER_ANCHOR_SECRET must be set" in refused.stderr
    signed = _check(
        **urls, COMMS_LEDGER_ANCHOR_FILE="/var/lib/comms/anchors.jsonl", COMMS_LEDGER_ANCHOR_SECRET="z" * 40
    )
    assert signed.returncode == 0, signed.stderr
