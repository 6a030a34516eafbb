"""The ledger's references without foreign-key constraints (migrations ``suppression/0019`` and
``0020``): an event that names a row that does not exist is refused, a row an event names cannot
be deleted, renumbered or truncated away, a delete racing an append cannot leave an event
pointing at nothing (in either order), a state row must name an event, and evidence and import
keys must name a real event. Everything is tried as the service role the suite runs as."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import DatabaseError, IntegrityError, connection, transaction

from comms.contacts.models import Brand, Contact
from comms.suppression import selectors
from comms.suppression.models import ConsentEvent, ConsentState, Purpose
from comms.suppression.services import Evidence, Principal
from tests.db_owner import as_owner
from tests.suppression.ledger_helpers import STAFF, as_service, grant, wait_for_a_lock_waiter, withdraw

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="the reference triggers are PostgreSQL's",
    ),
]

# Every column of an event but its id; a copy of an event at another place in another chain.
_COLUMNS = [str(f.column) for f in ConsentEvent._meta.concrete_fields if f.column != "id"]
_FREE_CHAIN = 30_000  # no test appends there: copies land at seq 1, 2, …
_MISSING = 2_000_000_000  # fits every id column, auth_user's int included


def _copy_events(sources: list[ConsentEvent], override: dict[int, dict[str, Any]] | None = None) -> None:
    """INSERT copies of ``sources`` in one statement (as the service role), at seq 1.. of a chain
    nobody appends to; ``override`` replaces columns of the copy at that position."""
    override = override or {}
    rows: list[str] = []
    params: list[Any] = []
    for position, source in enumerate(sources):
        values = {column: getattr(source, column) for column in _COLUMNS}
        values.update(chain=_FREE_CHAIN, seq=position + 1, hash=f"copy-{position}")
        values.update(override.get(position, {}))
        rows.append("(" + ", ".join(["%s"] * len(_COLUMNS)) + ")")
        params.extend(values[column] for column in _COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO suppression_consentevent ({', '.join(_COLUMNS)}) VALUES {', '.join(rows)}", params
        )


@pytest.fixture
def events(make_contact: Callable[..., Contact], purpose: Purpose) -> list[ConsentEvent]:
    """A grant (naming its contact, brand, purpose and notice) and a withdrawal of one contact."""
    contact = make_contact()
    return [grant(contact, purpose), withdraw(contact, purpose)]


@pytest.mark.django_db
def test_copies_that_name_existing_rows_are_accepted(events: list[ConsentEvent]) -> None:
    # The control: the trigger lets a correct statement through, one row or many.
    before = ConsentEvent.objects.count()
    _copy_events(events * 20)
    assert ConsentEvent.objects.count() == before + 40


@pytest.mark.django_db
@pytest.mark.parametrize(
    "column",
    ["contact_id", "actor_contact_id", "brand_id", "purpose_id", "notice_id", "actor_user_id", "confirms_id"],
)
@pytest.mark.parametrize("size", [1, 60], ids=["one row", "bulk"])
def test_an_event_naming_a_row_that_does_not_exist_is_refused(
    events: list[ConsentEvent], column: str, size: int
) -> None:
    before = ConsentEvent.objects.count()
    sources = (events * size)[:size]
    # The bad reference sits in the middle of a bulk statement: the whole statement goes.
    bad = {size // 2: {column: _MISSING}}
    with pytest.raises(IntegrityError, match=f"names a {column} that does not exist"):
        _copy_events(sources, bad)
    assert ConsentEvent.objects.count() == before


@pytest.mark.django_db
def test_a_contact_that_events_name_cannot_be_deleted_or_renumbered(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    named, other = make_contact(), make_contact()
    grant(named, purpose)
    with pytest.raises(IntegrityError, match="named by consent events \\(contact_id\\)"):
        as_service("DELETE FROM contacts_contact WHERE id = %s", [named.pk])
    with pytest.raises(IntegrityError, match="named by consent events"):
        as_service("UPDATE contacts_contact SET id = %s WHERE id = %s", [_MISSING, named.pk])
    assert Contact.objects.filter(pk=named.pk).exists()
    # A contact no event names is deleted as before (the guard only looks).
    assert as_service("DELETE FROM contacts_contact WHERE id = %s", [other.pk]) == 1
    assert not Contact.objects.filter(pk=other.pk).exists()
    # An ordinary UPDATE (no new id) is not the guard's business.
    assert as_service("UPDATE contacts_contact SET first_name = 'Kari' WHERE id = %s", [named.pk]) == 1


@pytest.mark.django_db
def test_a_guardian_named_as_the_actor_cannot_be_deleted(events: list[ConsentEvent]) -> None:
    guardian = events[0].contact
    assert guardian is not None
    # A copy of a grant whose actor contact is someone who is named nowhere else.
    bystander = Contact.objects.create(brand=guardian.brand, kind="member", email="vakt@example.no")
    _copy_events([events[0]], {0: {"actor_contact_id": bystander.pk}})
    with pytest.raises(IntegrityError, match="named by consent events \\(actor_contact_id\\)"):
        as_service("DELETE FROM contacts_contact WHERE id = %s", [bystander.pk])


@pytest.mark.django_db
def test_the_brand_purpose_and_user_that_events_name_cannot_be_deleted(
    make_contact: Callable[..., Contact], purpose: Purpose, brand: Brand
) -> None:
    user = User.objects.create_user("resepsjon", password="x" * 20)
    grant(make_contact(), purpose, principal=Principal(actor="staff", user=user, recorded_by="test"))
    for table, row_id, column in (
        ("contacts_brand", brand.pk, "brand_id"),
        ("suppression_purpose", purpose.pk, "purpose_id"),
        ("auth_user", user.pk, "actor_user_id"),
    ):
        with pytest.raises(
            IntegrityError, match=f"{table} {row_id} is named by consent events \\({column}\\)"
        ):
            as_service(f"DELETE FROM {table} WHERE id = %s", [row_id])
    # A brand nothing names can still go.
    spare = Brand.objects.create(key="ledig", name="Ledig", email_from="post@ledig.example")
    assert as_service("DELETE FROM contacts_brand WHERE id = %s", [spare.pk]) == 1
    assert not Brand.objects.filter(pk=spare.pk).exists()


@pytest.mark.django_db(transaction=True)  # its own transaction, to set its isolation level
def test_the_guard_refuses_to_decide_outside_read_committed(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    # In REPEATABLE READ its look at the ledger would use the transaction's older snapshot.
    contact = make_contact()
    with (
        pytest.raises(DatabaseError, match="runs only in READ COMMITTED"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("DELETE FROM contacts_contact WHERE id = %s", [contact.pk])


@pytest.mark.django_db
@pytest.mark.parametrize("table", ["contacts_contact", "contacts_brand", "suppression_purpose", "auth_user"])
def test_a_referenced_table_cannot_be_truncated_while_the_ledger_has_events(
    events: list[ConsentEvent], table: str
) -> None:
    # Settle the deferred checks first: PostgreSQL refuses a TRUNCATE while they are queued.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with pytest.raises(DatabaseError, match=f"TRUNCATE of {table} is not allowed"), transaction.atomic():
        as_owner(f"TRUNCATE {table} CASCADE")
    assert ConsentEvent.objects.count() == len(events)


# --- a delete and an append at the same moment ------------------------------------------------


def _in_thread(work: Callable[[], Any], outcome: dict[str, Any], name: str) -> threading.Thread:
    def run() -> None:
        try:
            outcome[name] = work()
        except Exception as exc:  # asserted by the test
            outcome[f"{name}_error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture
def held() -> Iterator[tuple[threading.Event, threading.Event]]:
    done, release = threading.Event(), threading.Event()
    yield done, release
    release.set()


def _delete_contact(contact_id: int) -> int:
    return as_service("DELETE FROM contacts_contact WHERE id = %s", [contact_id])


@pytest.mark.django_db(transaction=True)
def test_a_delete_during_an_uncommitted_append_waits_for_it_and_is_refused(
    make_contact: Callable[..., Contact], purpose: Purpose, held: tuple[threading.Event, threading.Event]
) -> None:
    contact = make_contact()  # no event names it yet
    appended, release = held
    outcome: dict[str, Any] = {}

    def append_and_hold() -> ConsentEvent:
        with transaction.atomic():
            event = grant(contact, purpose, principal=STAFF)
            appended.set()
            release.wait(timeout=30)
        return event

    first = _in_thread(append_and_hold, outcome, "append")
    assert appended.wait(timeout=30)
    second = _in_thread(lambda: _delete_contact(contact.pk), outcome, "delete")
    assert wait_for_a_lock_waiter(), "the delete never waited for the append in flight"
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert "append" in outcome, outcome
    assert isinstance(outcome.get("delete_error"), IntegrityError), outcome
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert ConsentEvent.objects.filter(contact_id=contact.pk).count() == 1
    assert selectors.ledger_verify().ok


@pytest.mark.django_db(transaction=True)
def test_an_append_during_an_uncommitted_delete_waits_for_it_and_is_refused(
    make_contact: Callable[..., Contact], purpose: Purpose, held: tuple[threading.Event, threading.Event]
) -> None:
    contact = make_contact()
    deleted, release = held
    outcome: dict[str, Any] = {}

    def delete_and_hold() -> int:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM contacts_contact WHERE id = %s", [contact.pk])
            deleted.set()
            release.wait(timeout=30)
            return int(cursor.rowcount)

    first = _in_thread(delete_and_hold, outcome, "delete")
    assert deleted.wait(timeout=30)
    second = _in_thread(lambda: grant(contact, purpose, principal=STAFF), outcome, "append")
    assert wait_for_a_lock_waiter(), "the append never waited for the delete in flight"
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert outcome.get("delete") == 1, outcome
    assert isinstance(outcome.get("append_error"), IntegrityError), outcome
    assert "contact_id that does not exist" in str(outcome["append_error"])
    assert not ConsentEvent.objects.filter(contact_id=contact.pk).exists()
    assert selectors.ledger_verify().ok


# --- the state, the evidence and the import keys (migration 0020) -------------------------------


@pytest.mark.django_db
def test_a_new_state_row_that_names_no_event_is_refused(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    # Its contact and purpose are held by the events it names; a row naming none would hold
    # nothing (a contact id that does not exist, say), so the guard refuses it.
    contact = make_contact()
    for contact_id in (contact.pk, _MISSING):
        with pytest.raises(DatabaseError, match="a new consent state row names no event of its scope"):
            as_service(
                "INSERT INTO suppression_consentstate (contact_id, channel, purpose_id, positive_order,"
                " pending_order, withdrawal_order, objection_order, restriction_order, restricted,"
                " grant_basis, grant_actor, grant_opt_out_offered, updated_at)"
                " VALUES (%s, 'email', %s, '', '', '', '', '', false, '', '', false, now())",
                [contact_id, purpose.pk],
            )
    # The service's own rows pass: each names the event that made it.
    grant(contact, purpose)
    assert ConsentState.objects.filter(contact=contact, purpose=purpose).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("table", ["suppression_consentevidence", "suppression_consentimportkey"])
def test_evidence_or_an_import_key_for_an_event_that_does_not_exist_is_refused(
    events: list[ConsentEvent], table: str
) -> None:
    insert = {
        "suppression_consentevidence": "INSERT INTO suppression_consentevidence (event_id, ip, user_agent,"
        " proof_sha256) VALUES (%s, NULL, 'kiosk', '')",
        "suppression_consentimportkey": "INSERT INTO suppression_consentimportkey (key, event_id, created_at)"
        " VALUES ('crm-1', %s, now())",
    }[table]
    with pytest.raises(IntegrityError, match=f"a {table} row names a consent event that does not exist"):
        as_service(insert, [_MISSING])
    assert as_service(insert, [events[1].pk]) == 1  # the control: a real event is accepted


@pytest.mark.django_db
def test_evidence_cannot_be_moved_to_an_event_that_does_not_exist(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    event = grant(make_contact(), purpose, evidence=Evidence(ip="192.0.2.7", user_agent="kiosk"))
    with pytest.raises(IntegrityError, match="names a consent event that does not exist"):
        as_service("UPDATE suppression_consentevidence SET event_id = %s WHERE event_id = %s", [_MISSING, event.pk])
    # Redaction, the update the service makes, still passes.
    assert as_service("UPDATE suppression_consentevidence SET ip = NULL WHERE event_id = %s", [event.pk]) == 1
