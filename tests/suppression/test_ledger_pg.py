"""The ledger as PostgreSQL keeps it: append-only triggers, verification that names the tampered
event, the chain under concurrent appends, and suppressions that outlive erasure and imports.

These tests talk to the database directly to play the attacker or the careless operator: as the
service role the suite runs as (which has no privilege to UPDATE or DELETE an event at all), and
as the owner (``tests.db_owner.as_owner``), whom only the triggers stop, and who may switch them
off. The code under test is the ledger's own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from io import StringIO
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import IntegrityError, ProgrammingError

from comms.contacts.models import Brand, Contact
from comms.contacts.services import ContactInput, contacts_import
from comms.rights.erasure import contact_erase
from comms.suppression import chain, gate, selectors, services
from comms.suppression.keys import address_key
from comms.suppression.models import (
    GENESIS_HASH,
    ChainHead,
    ConsentEvent,
    ConsentEvidence,
    Purpose,
    PurposeNotice,
    Suppression,
)
from comms.suppression.services import Evidence, Principal
from tests.db_owner import as_owner, triggers_disabled

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="triggers, advisory locks and real concurrency need PostgreSQL",
    ),
]

APPEND_ONLY = "append-only"
# What the service role hears before any trigger runs: it holds no such privilege.
DENIED = "permission denied for table"
LIFT_ONLY = "can only be lifted, once"


# --- local helpers and fixtures ---------------------------------------------------------------


def _execute(sql: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _event_trigger_disabled() -> AbstractContextManager[None]:
    """Play the owner who switches the append-only trigger off to tamper with the ledger."""
    return triggers_disabled("suppression_consentevent", "consentevent_append_only")


@pytest.fixture(autouse=True)
def one_chain(settings: Any) -> None:
    """These tests cut, reseal and delete the events of one chain (the first append records the
    count); tampering on several chains: ``test_chains_pg.py``."""
    settings.LEDGER_CHAINS = 1


@pytest.fixture
def grant(purpose: Purpose, staff: Principal) -> Callable[..., ConsentEvent]:
    """Record an effective consent (front desk, so no double opt-in) for a contact."""

    def record(contact: Contact, channel: str = "email", **extra: Any) -> ConsentEvent:
        return services.consent_grant(
            contact=contact,
            channel=channel,
            purpose=extra.pop("purpose", purpose),
            basis="consent",
            source="front_desk",
            principal=staff,
            **extra,
        )

    return record


@pytest.fixture
def events(make_contact: Callable[..., Contact], grant: Callable[..., ConsentEvent]) -> list[ConsentEvent]:
    """Six plain grants in one chain (no evidence, nothing else pointing at them)."""
    return [grant(make_contact()) for _ in range(6)]


def _assert_refused(match: str, action: Callable[[], object]) -> None:
    """The database refuses ``action``; the savepoint keeps the test's transaction usable."""
    with pytest.raises(ProgrammingError, match=match), transaction.atomic():
        action()


def _verify_command_error() -> str:
    with pytest.raises(CommandError) as failure:
        call_command("verify_ledger", stdout=StringIO())
    return str(failure.value)


# --- 1. the database refuses to change the ledger ---------------------------------------------


def test_the_database_refuses_raw_sql_update_and_delete_of_a_consent_event(
    events: list[ConsentEvent],
) -> None:
    event = events[2]
    _assert_refused(
        APPEND_ONLY,
        lambda: as_owner("UPDATE suppression_consentevent SET action = 'withdraw' WHERE id = %s", [event.pk]),
    )
    _assert_refused(
        APPEND_ONLY,
        lambda: as_owner(
            "UPDATE suppression_consentevent SET occurred_at = occurred_at - interval '1 day' WHERE id = %s",
            [event.pk],
        ),
    )
    _assert_refused(
        APPEND_ONLY, lambda: as_owner("DELETE FROM suppression_consentevent WHERE id = %s", [event.pk])
    )
    _assert_refused(APPEND_ONLY, lambda: as_owner("DELETE FROM suppression_consentevent"))
    stored = ConsentEvent.objects.get(pk=event.pk)
    assert (stored.action, stored.occurred_at, stored.hash) == (event.action, event.occurred_at, event.hash)
    assert ConsentEvent.objects.count() == len(events)


def test_the_database_refuses_orm_update_and_delete_of_a_consent_event(
    events: list[ConsentEvent],
) -> None:
    event = events[3]
    _assert_refused(DENIED, lambda: ConsentEvent.objects.filter(pk=event.pk).update(action="withdraw"))
    _assert_refused(DENIED, lambda: ConsentEvent.objects.update(recorded_by="someone else"))

    def save_changed() -> None:
        event.source = "admin"
        event.save()

    _assert_refused(DENIED, save_changed)
    _assert_refused(DENIED, lambda: ConsentEvent.objects.filter(pk=event.pk).delete())
    _assert_refused(DENIED, lambda: ConsentEvent.objects.get(pk=events[4].pk).delete())
    assert ConsentEvent.objects.filter(pk=event.pk, source="front_desk").exists()
    assert ConsentEvent.objects.count() == len(events)
    assert selectors.ledger_verify().ok


def test_the_database_refuses_update_and_delete_of_a_purpose_notice(purpose: Purpose) -> None:
    # A second version nothing points at, so only the trigger (not a foreign key) can refuse.
    notice = services.purpose_notice_publish(purpose=purpose, text="A new text")
    _assert_refused(
        APPEND_ONLY,
        lambda: as_owner(
            "UPDATE suppression_purposenotice SET text = 'rewritten' WHERE id = %s", [notice.pk]
        ),
    )
    _assert_refused(
        APPEND_ONLY, lambda: as_owner("DELETE FROM suppression_purposenotice WHERE id = %s", [notice.pk])
    )
    _assert_refused(DENIED, lambda: PurposeNotice.objects.filter(pk=notice.pk).update(text="rewritten"))
    _assert_refused(DENIED, lambda: PurposeNotice.objects.filter(pk=notice.pk).delete())
    _assert_refused(DENIED, lambda: PurposeNotice.objects.get(pk=notice.pk).delete())
    assert PurposeNotice.objects.get(pk=notice.pk).text == "A new text"
    assert purpose.notices.count() == 2


@pytest.fixture
def suppression(db: Any, staff: Principal) -> Suppression:
    _, row = services.suppression_add(
        channel="email", address="bounced@example.no", reason="hard_bounce", source="admin", principal=staff
    )
    assert row is not None
    return row


def test_the_database_refuses_to_delete_a_suppression(suppression: Suppression) -> None:
    _assert_refused(
        APPEND_ONLY, lambda: as_owner("DELETE FROM suppression_suppression WHERE id = %s", [suppression.pk])
    )
    _assert_refused(DENIED, lambda: Suppression.objects.filter(pk=suppression.pk).delete())
    _assert_refused(DENIED, lambda: Suppression.objects.get(pk=suppression.pk).delete())
    assert Suppression.objects.filter(pk=suppression.pk, lifted_at__isnull=True).exists()


@pytest.mark.parametrize(
    "assignment",
    [
        "reason = 'complaint'",
        "channel = 'sms'",
        "address_key = repeat('0', 64)",
        "brand_id = (SELECT id FROM contacts_brand LIMIT 1)",
        "created_at = created_at - interval '1 day'",
        "source_event_id = source_event_id",  # even an update that changes nothing
    ],
)
def test_the_database_refuses_any_update_of_a_suppression_but_a_lift(
    suppression: Suppression, brand: Brand, assignment: str
) -> None:
    _assert_refused(
        LIFT_ONLY,
        lambda: _execute(f"UPDATE suppression_suppression SET {assignment} WHERE id = %s", [suppression.pk]),
    )


def test_the_database_refuses_a_lift_without_a_ledger_event(suppression: Suppression) -> None:
    _assert_refused(
        LIFT_ONLY,
        lambda: _execute(
            "UPDATE suppression_suppression SET lifted_at = now() WHERE id = %s", [suppression.pk]
        ),
    )
    _assert_refused(
        LIFT_ONLY, lambda: Suppression.objects.filter(pk=suppression.pk).update(reason="complaint")
    )

    def save_unchanged() -> None:
        Suppression.objects.get(pk=suppression.pk).save()

    _assert_refused(LIFT_ONLY, save_unchanged)


def test_the_database_lets_a_suppression_be_lifted_once_by_an_event_and_never_again(
    suppression: Suppression, staff: Principal
) -> None:
    event = services.suppression_lift(suppression=suppression, source="admin", principal=staff)
    lifted = Suppression.objects.get(pk=suppression.pk)
    assert lifted.lifted_by_event_id == event.pk
    assert lifted.lifted_at is not None
    # Lifting it a second time, moving the lift, or un-lifting it is refused.
    _assert_refused(
        LIFT_ONLY,
        lambda: Suppression.objects.filter(pk=suppression.pk).update(
            lifted_at=event.recorded_at, lifted_by_event=event
        ),
    )
    _assert_refused(
        LIFT_ONLY,
        lambda: _execute(
            "UPDATE suppression_suppression SET lifted_at = NULL, lifted_by_event_id = NULL WHERE id = %s",
            [suppression.pk],
        ),
    )
    _assert_refused(DENIED, lambda: Suppression.objects.filter(pk=suppression.pk).delete())


def test_a_raw_sql_lift_with_an_event_is_the_one_update_the_database_allows(
    suppression: Suppression, events: list[ConsentEvent]
) -> None:
    _execute(
        "UPDATE suppression_suppression SET lifted_at = now(), lifted_by_event_id = %s WHERE id = %s",
        [events[0].pk, suppression.pk],
    )
    assert Suppression.objects.get(pk=suppression.pk).lifted_by_event_id == events[0].pk


def test_the_check_constraint_also_refuses_a_lift_without_an_event_when_the_trigger_is_off(
    suppression: Suppression,
) -> None:
    with (
        triggers_disabled("suppression_suppression", "suppression_lift_only"),
        pytest.raises(IntegrityError, match="suppression_lift_needs_event"),
        transaction.atomic(),
    ):
        as_owner("UPDATE suppression_suppression SET lifted_at = now() WHERE id = %s", [suppression.pk])


# --- 2. verification names what was tampered with ---------------------------------------------


def test_an_intact_ledger_verifies(events: list[ConsentEvent], api: Callable[[str], Any]) -> None:
    result = selectors.ledger_verify()
    assert result.ok
    assert (result.events_checked, result.first_broken, result.evidence_mismatches) == (len(events), None, [])
    out = StringIO()
    call_command("verify_ledger", stdout=out)
    assert "ledger OK" in out.getvalue()
    body = api("dpo").get("/ledger/verify").json()
    assert body["ok"] is True
    assert body["first_broken"] is None


@pytest.mark.parametrize(
    "tampering",
    [
        "action = 'withdraw'",
        "occurred_at = occurred_at - interval '3 days'",
        "purpose_id = NULL",
        "pending_confirmation = true",
    ],
)
def test_verify_names_the_event_that_was_changed_behind_the_triggers_back(
    events: list[ConsentEvent], api: Callable[[str], Any], tampering: str
) -> None:
    victim = events[3]
    with _event_trigger_disabled():
        as_owner(f"UPDATE suppression_consentevent SET {tampering} WHERE id = %s", [victim.pk])
    # The trigger is back on, even for the owner.
    _assert_refused(
        APPEND_ONLY,
        lambda: as_owner("UPDATE suppression_consentevent SET action = 'grant' WHERE id = %s", [victim.pk]),
    )

    result = selectors.ledger_verify()
    assert result.ok is False
    assert result.first_broken is not None
    assert result.first_broken.event_id == victim.pk
    assert result.first_broken.seq == victim.seq
    assert "hash does not match" in result.first_broken.problem
    assert result.events_checked == len(events)

    assert f"at event {victim.pk} " in _verify_command_error()

    response = api("dpo").get("/ledger/verify")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert body["first_broken"]["event_id"] == victim.pk
    assert body["first_broken"]["problem"]


def test_verify_names_the_successor_of_an_event_that_was_changed_and_resealed(
    events: list[ConsentEvent],
) -> None:
    victim, successor = events[2], events[3]
    forged = ConsentEvent.objects.get(pk=victim.pk)
    forged.action = "withdraw"
    with _event_trigger_disabled():
        as_owner(
            "UPDATE suppression_consentevent SET action = 'withdraw', hash = %s WHERE id = %s",
            [chain.event_hash(forged), victim.pk],
        )
    result = selectors.ledger_verify()
    assert result.ok is False
    assert result.first_broken is not None
    assert result.first_broken.event_id == successor.pk
    assert "prev_hash" in result.first_broken.problem


def test_verify_notices_an_event_deleted_from_the_middle_of_the_chain(events: list[ConsentEvent]) -> None:
    with _event_trigger_disabled():
        # The consent state points at events by foreign key: the tamperer skips those checks too.
        as_owner("SET LOCAL session_replication_role = replica")
        as_owner("DELETE FROM suppression_consentevent WHERE id = %s", [events[2].pk])
        as_owner("SET LOCAL session_replication_role = DEFAULT")
    result = selectors.ledger_verify()
    assert result.ok is False
    assert result.first_broken is not None
    assert result.first_broken.event_id == events[3].pk
    assert result.first_broken.problem == f"sequence gap: expected {events[2].seq}, found {events[3].seq}"
    assert f"at event {events[3].pk} " in _verify_command_error()


def test_verify_notices_the_last_event_deleted_by_the_head_mismatch(events: list[ConsentEvent]) -> None:
    with _event_trigger_disabled():
        # The consent state points at events by foreign key: the tamperer skips those checks too.
        as_owner("SET LOCAL session_replication_role = replica")
        as_owner("DELETE FROM suppression_consentevent WHERE id = %s", [events[-1].pk])
        as_owner("SET LOCAL session_replication_role = DEFAULT")
    result = selectors.ledger_verify()
    assert result.ok is False
    assert result.first_broken is not None
    assert result.first_broken.event_id == events[-2].pk
    assert "chain head does not match" in result.first_broken.problem
    assert "events missing" in _verify_command_error()


def test_verify_reports_evidence_changed_after_sealing_but_not_evidence_redacted_on_purpose(
    make_contact: Callable[..., Contact], grant: Callable[..., ConsentEvent]
) -> None:
    proof = Evidence(ip="192.0.2.10", user_agent="Mozilla/5.0 (front desk tablet)", proof_sha256="ab" * 32)
    forged, redacted, untouched = (grant(make_contact(), evidence=proof) for _ in range(3))
    ConsentEvidence.objects.filter(event=forged).update(user_agent="curl/8.0")
    assert services.evidence_redact(events=[redacted.pk]) == 1

    result = selectors.ledger_verify()
    assert result.ok is False
    assert result.first_broken is None  # the chain itself is intact
    assert result.evidence_mismatches == [forged.pk]
    assert redacted.pk not in result.evidence_mismatches
    assert untouched.pk not in result.evidence_mismatches
    assert str(forged.pk) in _verify_command_error()


def test_verify_accepts_an_erasure_that_redacted_the_evidence(
    make_contact: Callable[..., Contact], grant: Callable[..., ConsentEvent], staff: Principal
) -> None:
    contact = make_contact()
    grant(contact, evidence=Evidence(ip="192.0.2.11", user_agent="Mozilla/5.0"))
    contact_erase(contact=contact, source="rights_request", principal=staff)
    result = selectors.ledger_verify()
    assert result.ok, result


def test_a_checkpoint_on_an_intact_ledger_verifies(
    events: list[ConsentEvent], make_contact: Callable[..., Contact], grant: Callable[..., ConsentEvent]
) -> None:
    first = services.ledger_checkpoint()
    grant(make_contact())  # events appended after a checkpoint keep it valid
    second = services.ledger_checkpoint()
    assert second.prev_hash == first.hash
    result = selectors.ledger_verify()
    assert result.ok
    assert result.checkpoint_problem is None


def _rewrite_chain_from(victim: ConsentEvent, tampering: str) -> None:
    """The attacker changes a sealed event and recomputes every hash after it, and the head, so
    the chain on its own verifies again."""
    with _event_trigger_disabled():
        as_owner(f"UPDATE suppression_consentevent SET {tampering} WHERE id = %s", [victim.pk])
        prev_hash = ConsentEvent.objects.get(chain=victim.chain, seq=victim.seq - 1).hash
        for event in ConsentEvent.objects.filter(chain=victim.chain, seq__gte=victim.seq).order_by("seq"):
            event.prev_hash = prev_hash
            event.hash = chain.event_hash(event)
            as_owner(
                "UPDATE suppression_consentevent SET prev_hash = %s, hash = %s WHERE id = %s",
                [event.prev_hash, event.hash, event.pk],
            )
            prev_hash = event.hash
    ChainHead.objects.filter(chain=victim.chain).update(hash=prev_hash)


def test_a_checkpoint_catches_a_sealed_event_changed_and_the_chain_resealed_after_it(
    events: list[ConsentEvent], make_contact: Callable[..., Contact], grant: Callable[..., ConsentEvent]
) -> None:
    checkpoint = services.ledger_checkpoint()
    grant(make_contact())  # the ledger goes on after the checkpoint
    victim = events[2]
    _rewrite_chain_from(victim, "action = 'withdraw'")

    result = selectors.ledger_verify()
    assert result.first_broken is None  # the rewrite is internally consistent
    assert result.ok is False
    assert result.checkpoint_problem == (
        f"checkpoint {checkpoint.pk} sealed an event that changed (chain {victim.chain})"
    )
    assert f"checkpoint {checkpoint.pk}" in _verify_command_error()


def test_verify_names_the_first_checkpoint_that_sealed_a_changed_event(
    events: list[ConsentEvent], make_contact: Callable[..., Contact], grant: Callable[..., ConsentEvent]
) -> None:
    first = services.ledger_checkpoint()
    grant(make_contact())
    services.ledger_checkpoint()
    _rewrite_chain_from(events[1], "occurred_at = occurred_at - interval '1 year'")

    result = selectors.ledger_verify()
    assert result.first_broken is None
    assert result.checkpoint_problem == f"checkpoint {first.pk} sealed an event that changed (chain 0)"


def test_a_checkpoint_followed_by_tampering_of_a_sealed_event_fails_verification(
    events: list[ConsentEvent],
) -> None:
    services.ledger_checkpoint()
    victim = events[1]
    with _event_trigger_disabled():
        as_owner("UPDATE suppression_consentevent SET action = 'object' WHERE id = %s", [victim.pk])
    result = selectors.ledger_verify()
    assert result.ok is False
    assert result.first_broken is not None
    assert result.first_broken.event_id == victim.pk


def test_the_database_refuses_to_alter_a_checkpoint(events: list[ConsentEvent]) -> None:
    checkpoint = services.ledger_checkpoint()
    _assert_refused(DENIED, lambda: type(checkpoint).objects.filter(pk=checkpoint.pk).update(heads={}))
    _assert_refused(DENIED, lambda: type(checkpoint).objects.filter(pk=checkpoint.pk).delete())
    _assert_refused(
        APPEND_ONLY,
        lambda: as_owner("UPDATE suppression_ledgercheckpoint SET heads = '{}' WHERE id = %s", [checkpoint.pk]),
    )
    _assert_refused(
        APPEND_ONLY, lambda: as_owner("DELETE FROM suppression_ledgercheckpoint WHERE id = %s", [checkpoint.pk])
    )


def test_a_checkpoint_whose_recorded_heads_were_edited_does_not_verify(events: list[ConsentEvent]) -> None:
    checkpoint = services.ledger_checkpoint()
    with triggers_disabled("suppression_ledgercheckpoint", "ledgercheckpoint_append_only"):
        as_owner(
            "UPDATE suppression_ledgercheckpoint SET heads = %s::jsonb WHERE id = %s",
            [json.dumps({"0": [2, events[1].hash]}), checkpoint.pk],
        )
    result = selectors.ledger_verify()
    assert result.ok is False
    assert result.checkpoint_problem == f"checkpoint {checkpoint.pk} does not verify"


# --- 3. concurrent appends --------------------------------------------------------------------

APPENDS = 50
WORKERS = 25


def _assert_every_chain_unbroken() -> None:
    chains = sorted(set(ConsentEvent.objects.values_list("chain", flat=True)))
    for number in chains:
        rows = list(
            ConsentEvent.objects.filter(chain=number).order_by("seq").values_list("seq", "prev_hash", "hash")
        )
        assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1)), f"chain {number} has gaps"
        expected_prev = GENESIS_HASH
        for seq, prev_hash, digest in rows:
            assert prev_hash == expected_prev, f"chain {number} breaks at seq {seq}"
            expected_prev = digest
        head = ChainHead.objects.get(chain=number)
        assert (head.seq, head.hash) == (len(rows), expected_prev), f"chain {number}'s head is off"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("chains", "history"),
    [(1, 0), (1, 3), (4, 3)],
    ids=["one-chain-from-genesis", "one-chain-with-history", "four-chains"],
)
def test_fifty_concurrent_appends_leave_one_unbroken_chain(
    make_contact: Callable[..., Contact],
    grant: Callable[..., ConsentEvent],
    purpose: Purpose,
    settings: Any,
    chains: int,
    history: int,
) -> None:
    settings.LEDGER_CHAINS = chains
    for _ in range(history):
        grant(make_contact())
    contacts = [make_contact() for _ in range(APPENDS)]
    before = ConsentEvent.objects.count()
    barrier = threading.Barrier(WORKERS)

    def append(index: int) -> int:
        try:
            # The first wave (one task per worker) starts together; the rest follow at once.
            if index < WORKERS:
                barrier.wait(timeout=30)
            contact = contacts[index]
            principal = Principal(actor="self", recorded_by=f"thread-{index}")
            if index % 2:
                event = services.consent_withdraw(
                    contact=contact,
                    channel="email",
                    purpose=None,
                    source="unsubscribe_link",
                    principal=principal,
                )
            else:
                event = services.consent_grant(
                    contact=contact,
                    channel="email",
                    purpose=purpose,
                    basis="consent",
                    source="front_desk",
                    principal=principal,
                )
            return event.pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(append, index) for index in range(APPENDS)]
        ids = [future.result(timeout=120) for future in futures]

    assert len(set(ids)) == APPENDS
    assert ConsentEvent.objects.count() == before + APPENDS
    assert ConsentEvent.objects.filter(pk__in=ids).count() == APPENDS
    _assert_every_chain_unbroken()
    result = selectors.ledger_verify()
    assert result.ok, result
    assert result.events_checked == before + APPENDS
    assert Suppression.objects.filter(reason="withdrawn").count() == APPENDS // 2
    if chains == 1:
        head = ChainHead.objects.get(chain=0)
        last = ConsentEvent.objects.order_by("-seq").first()
        assert last is not None
        assert (head.seq, head.hash) == (before + APPENDS, last.hash)


# --- 5. a suppression survives the contact's erasure ------------------------------------------


def test_a_suppression_survives_the_erasure_of_the_contact(
    make_contact: Callable[..., Contact],
    grant: Callable[..., ConsentEvent],
    make_purpose: Callable[..., Purpose],
    purpose: Purpose,
    other_brand: Brand,
    staff: Principal,
    person: Principal,
) -> None:
    contact = make_contact(
        email="Kari.Nordmann@Example.no",
        first_name="Kari",
        last_name="Nordmann",
        external_id="m-100",
    )
    email, mobile = contact.email, contact.mobile
    assert email == "kari.nordmann@example.no"
    assert mobile
    grant(contact, evidence=Evidence(ip="192.0.2.20", user_agent="Mozilla/5.0"))
    services.consent_withdraw(
        contact=contact, channel=None, purpose=None, source="unsubscribe_link", principal=person
    )
    withdrawn = set(Suppression.objects.filter(reason="withdrawn").values_list("pk", flat=True))
    assert len(withdrawn) == 2  # email and sms

    contact_erase(contact=contact, source="rights_request", principal=staff)

    erased = Contact.objects.get(pk=contact.pk)
    assert erased.erased_at is not None
    assert (erased.first_name, erased.last_name, erased.email, erased.mobile, erased.external_id) == (
        "",
        "",
        None,
        None,
        None,
    )
    assert erased.birth_date is None
    # Every suppression is still there and active, and the erasure added one per address.
    still_active = Suppression.objects.filter(pk__in=withdrawn, lifted_at__isnull=True)
    assert set(still_active.values_list("pk", flat=True)) == withdrawn
    for channel, address in (("email", email), ("sms", mobile)):
        assert Suppression.objects.filter(
            address_key=address_key(channel, address),
            channel=channel,
            brand__isnull=True,
            reason="erased",
            lifted_at__isnull=True,
        ).exists(), channel
    assert ConsentEvidence.objects.get(event__contact=erased).ip is None
    assert selectors.ledger_verify().ok

    # The same person comes back in the member system's next export under a new id.
    result = contacts_import(
        rows=[
            ContactInput(
                brand="fit24", kind="member", external_id="m-200", email=email.upper(), mobile=mobile
            ),
            ContactInput(brand=other_brand.key, kind="member", external_id="k-1", email=email),
        ]
    )
    assert (result.created, result.errors) == (2, [])
    again = Contact.objects.get(brand__key="fit24", external_id="m-200")
    assert again.pk != contact.pk
    for channel in ("email", "sms"):
        decision = gate.check(contact=again, channel=channel, purpose=purpose)
        assert decision.allowed is False
        assert decision.reason.startswith("suppressed:"), decision
    # In another brand only the erasure suppression applies, and even a fresh consent given at
    # the front desk does not get past it.
    elsewhere = Contact.objects.get(brand=other_brand, external_id="k-1")
    other_purpose = make_purpose(key="klinikk24-news", channels=("email",), brand=other_brand)
    grant(elsewhere, purpose=other_purpose)
    decision = gate.check(contact=elsewhere, channel="email", purpose=other_purpose)
    assert (decision.allowed, decision.reason) == (False, "suppressed:erased")
    assert selectors.ledger_verify().ok


# --- 6. an import leaves the ledger alone -----------------------------------------------------


def _ledger_snapshot() -> tuple[int, list[tuple[int, int, str]], list[tuple[Any, ...]]]:
    return (
        ConsentEvent.objects.count(),
        list(ChainHead.objects.order_by("chain").values_list("chain", "seq", "hash")),
        list(Suppression.objects.order_by("pk").values_list("pk", "address_key", "reason", "lifted_at")),
    )


@pytest.mark.parametrize("atomic", [True, False], ids=["api-import", "csv-import"])
def test_an_import_leaves_the_ledger_unchanged(
    make_contact: Callable[..., Contact],
    grant: Callable[..., ConsentEvent],
    purpose: Purpose,
    staff: Principal,
    person: Principal,
    atomic: bool,
) -> None:
    consenting = make_contact(external_id="m-1", first_name="Ola")
    grant(consenting)
    grant(consenting, channel="sms")
    withdrawn = make_contact(external_id="m-2", first_name="Kari")
    grant(withdrawn)
    services.consent_withdraw(
        contact=withdrawn, channel="email", purpose=None, source="unsubscribe_link", principal=person
    )
    services.suppression_add(
        channel="email", address="complained@example.no", reason="complaint", source="admin", principal=staff
    )
    before = _ledger_snapshot()
    assert before[0] == 5
    assert len(before[2]) == 2

    result = contacts_import(
        rows=[
            ContactInput(brand="fit24", kind="member", external_id="m-1", first_name="Ola Jr."),
            ContactInput(brand="fit24", kind="member", external_id="m-2", last_name="Nordmann", tags=["vip"]),
            ContactInput(brand="fit24", kind="lead", external_id="m-3", email="Complained@Example.no"),
            ContactInput(brand="fit24", kind="guest", external_id="m-4", email="new@example.no"),
        ],
        atomic=atomic,
    )
    assert (result.created, result.updated, result.errors) == (2, 2, [])
    assert _ledger_snapshot() == before
    assert selectors.ledger_verify().ok

    complainer = Contact.objects.get(external_id="m-3")
    decision = gate.check(contact=complainer, channel="email", purpose=purpose)
    assert (decision.allowed, decision.reason) == (False, "suppressed:complaint")
    decision = gate.check(contact=Contact.objects.get(pk=withdrawn.pk), channel="email", purpose=purpose)
    assert (decision.allowed, decision.reason) == (False, "suppressed:withdrawn")
    decision = gate.check(contact=Contact.objects.get(pk=consenting.pk), channel="email", purpose=purpose)
    assert decision.allowed
    assert Contact.objects.get(pk=consenting.pk).first_name == "Ola Jr."
    # A second run of the same import changes nothing at all.
    again = contacts_import(
        rows=[ContactInput(brand="fit24", kind="lead", external_id="m-3", email="complained@example.no")],
        atomic=atomic,
    )
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert _ledger_snapshot() == before
