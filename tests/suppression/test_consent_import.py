"""``services.consents_import``: rows by contact id or by brand + external id, idempotent on the
source's own key, bad rows reported by index and field while good rows are kept, a grant after a
withdrawal waiting for double opt-in, withdrawals that suppress, and many rows over four chains
leaving every chain and the consent state intact."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from comms.contacts.models import Contact
from comms.suppression.gate import check
from comms.suppression.models import ConsentEvent, ConsentImportKey, Purpose, Suppression
from comms.suppression.selectors import ledger_verify
from comms.suppression.services import ConsentImportRow, Principal, consents_import
from comms.suppression.state import state_verify
from tests.suppression.ledger_helpers import a_minor, decide, grant, withdraw

MakeContact = Callable[..., Contact]
IMPORTER = Principal(actor="staff", recorded_by="import-test")
LONG_AGO = timezone.now() - dt.timedelta(days=200)


def row(key: str, contact: Contact | None, purpose: Purpose | str, **extra: Any) -> ConsentImportRow:
    return ConsentImportRow(
        external_key=key,
        channel=extra.pop("channel", "email"),
        purpose=purpose if isinstance(purpose, str) else purpose.key,
        occurred_at=extra.pop("occurred_at", LONG_AGO),
        contact_id=contact.pk if contact is not None else None,
        **extra,
    )


def run(rows: list[ConsentImportRow]) -> Any:
    return consents_import(rows=rows, principal=IMPORTER)


def assert_intact() -> None:
    result = ledger_verify()
    assert result.ok, result
    _, mismatches = state_verify()
    assert mismatches == [], [m.describe() for m in mismatches]


def test_rows_by_contact_id_and_by_brand_and_external_id_become_grants(
    make_contact: MakeContact, purpose: Purpose
) -> None:
    ada = make_contact()
    bo = make_contact(external_id="m-77")
    result = run(
        [
            row("src-1", ada, purpose),
            row("src-2", None, purpose, brand="fit24", contact_external_id="m-77", channel="sms"),
        ]
    )
    assert (result.created, result.unchanged, result.errors) == (2, 0, [])
    first, second = (ConsentEvent.objects.get(pk=pk) for pk in result.event_ids)
    assert (first.contact_id, first.channel, first.action, first.source) == (
        ada.pk,
        "email",
        "grant",
        "import",
    )
    assert (second.contact_id, second.channel) == (bo.pk, "sms")
    assert first.occurred_at == LONG_AGO
    assert decide(ada, purpose) == (True, "consent", first.pk)
    assert decide(bo, purpose, "sms") == (True, "consent", second.pk)
    assert set(ConsentImportKey.objects.values_list("key", "event_id")) == {
        ("src-1", first.pk),
        ("src-2", second.pk),
    }
    assert_intact()


def test_a_rerun_of_the_same_rows_adds_nothing(make_contact: MakeContact, purpose: Purpose) -> None:
    contacts = [make_contact() for _ in range(3)]
    rows = [row(f"src-{c.pk}", c, purpose) for c in contacts]
    assert run(rows).created == 3
    events = ConsentEvent.objects.count()
    again = run(rows)
    assert (again.created, again.unchanged, again.errors, again.event_ids) == (0, 3, [], [])
    assert ConsentEvent.objects.count() == events
    assert_intact()


def test_bad_rows_are_reported_by_index_and_field_and_the_good_ones_are_kept(
    make_contact: MakeContact, purpose: Purpose, guardian: Contact
) -> None:
    good, other = make_contact(), make_contact()
    lone_minor = make_contact(birth_date=a_minor())
    rows = [
        row("ok-1", good, purpose),
        row("bad-purpose", good, "no-such-purpose"),
        row("bad-channel", good, purpose, channel="fax"),
        row("no-date", good, purpose, occurred_at=None),
        row("future", good, purpose, occurred_at=timezone.now() + dt.timedelta(days=2)),
        row("minor", lone_minor, purpose),
        row("ok-2", other, purpose),
        row("ok-2", other, purpose, channel="sms"),  # the same key twice in one file
        row("unknown-contact", None, purpose, brand="fit24", contact_external_id="nobody"),
    ]
    before = ConsentEvent.objects.count()
    result = run(rows)
    assert result.created == 2
    assert [(e.index, e.external_key, e.field) for e in result.errors] == [
        (1, "bad-purpose", "purpose"),
        (2, "bad-channel", "channel"),
        (3, "no-date", "occurred_at"),
        (4, "future", "occurred_at"),
        (5, "minor", "actor"),
        (7, "ok-2", "external_key"),
        (8, "unknown-contact", "contact_external_id"),
    ]
    assert all(error.message for error in result.errors)
    assert ConsentEvent.objects.count() == before + 2
    assert set(ConsentEvent.objects.filter(pk__in=result.event_ids).values_list("contact_id", "channel")) == {
        (good.pk, "email"),
        (other.pk, "email"),
    }
    assert not ConsentEvent.objects.filter(contact=lone_minor).exists()
    assert set(ConsentImportKey.objects.values_list("key", flat=True)) == {"ok-1", "ok-2"}
    # The rejected rows can be fixed and imported on their own; ok-2 stays done.
    fixed = run([row("no-date", good, purpose, channel="sms"), row("ok-2", other, purpose)])
    assert (fixed.created, fixed.unchanged, fixed.errors) == (1, 1, [])
    assert_intact()


def test_an_imported_grant_after_the_persons_withdrawal_waits_for_their_confirmation(
    make_contact: MakeContact, purpose: Purpose
) -> None:
    earlier = make_contact()
    grant(earlier, purpose)
    withdrawal = withdraw(earlier, purpose, channel="email")
    in_file = make_contact()
    result = run(
        [
            row("after-withdrawal", earlier, purpose, occurred_at=timezone.now() - dt.timedelta(hours=1)),
            row("w-1", in_file, "", action="withdraw", occurred_at=timezone.now() - dt.timedelta(days=3)),
            row("g-1", in_file, purpose, occurred_at=timezone.now() - dt.timedelta(days=1)),
        ]
    )
    assert (result.created, result.errors) == (3, [])
    regrant, _, in_file_grant = (ConsentEvent.objects.get(pk=pk) for pk in result.event_ids)
    assert regrant.pending_confirmation is True
    assert in_file_grant.pending_confirmation is True
    # The earlier withdrawal still decides until the person confirms.
    assert decide(earlier, purpose) == (False, "withdrawn", withdrawal.pk)
    assert decide(in_file, purpose)[:2] == (False, "suppressed:withdrawn")
    assert_intact()


def test_an_imported_grant_to_a_fresh_scope_is_pending_only_when_nothing_came_before(
    make_contact: MakeContact, purpose: Purpose
) -> None:
    contact = make_contact()
    result = run([row("first", contact, purpose, source="web_form")])
    (event,) = (ConsentEvent.objects.get(pk=pk) for pk in result.event_ids)
    assert event.pending_confirmation is True  # an unproven source waits as a single grant would
    assert decide(contact, purpose) == (False, "awaiting_confirmation", event.pk)


def test_a_withdrawal_row_for_the_whole_channel_suppresses_and_the_gate_denies(
    make_contact: MakeContact, purpose: Purpose, second_purpose: Purpose
) -> None:
    contact = make_contact()
    grant(contact, purpose)
    grant(contact, second_purpose)
    result = run([row("w-all", contact, "", action="withdraw", occurred_at=timezone.now())])
    assert (result.created, result.errors) == (1, [])
    (event,) = (ConsentEvent.objects.get(pk=pk) for pk in result.event_ids)
    assert (event.action, event.channel, event.purpose_id) == ("withdraw", "email", None)
    suppression = Suppression.objects.get(source_event=event)
    assert (suppression.reason, suppression.channel, suppression.lifted_at) == ("withdrawn", "email", None)
    for each in (purpose, second_purpose):
        decision = check(contact=contact, channel="email", purpose=each)
        assert (decision.allowed, decision.reason, decision.event_id) == (
            False,
            "suppressed:withdrawn",
            event.pk,
        )
    assert check(contact=contact, channel="sms", purpose=purpose).reason == "no_consent"
    assert_intact()


def test_many_rows_over_four_chains_keep_every_chain_and_the_state_intact(
    settings: Any, make_contact: MakeContact, purpose: Purpose, second_purpose: Purpose
) -> None:
    settings.LEDGER_CHAINS = 4
    contacts = [make_contact() for _ in range(24)]
    grant(contacts[0], purpose)  # some single appends before the import
    withdraw(contacts[1], None, channel="sms")
    base = timezone.now() - dt.timedelta(days=30)
    rows: list[ConsentImportRow] = []
    for n, contact in enumerate(contacts):
        for k, (action, chan, what) in enumerate(
            [
                ("grant", "email", purpose),
                ("grant", "sms", second_purpose),
                ("withdraw", "email", purpose if n % 3 else ""),
                ("grant", "email", second_purpose),
            ]
        ):
            rows.append(
                row(
                    f"c{contact.pk}-{k}",
                    contact,
                    what,
                    action=action,
                    channel=chan,
                    # Out of time order on purpose for some contacts: the fold orders by occurred_at.
                    occurred_at=base + dt.timedelta(hours=(k * 7 + n) % 11),
                )
            )
    result = consents_import(rows=rows, principal=IMPORTER)
    assert (result.created, result.errors) == (len(rows), [])
    events = {event.pk: event for event in ConsentEvent.objects.filter(pk__in=result.event_ids)}
    assert {event.chain for event in events.values()} == {0, 1, 2, 3}
    # Each contact's rows land on its chain in the order of the file.
    for contact in contacts:
        mine = [
            events[pk] for pk, r in zip(result.event_ids, rows, strict=True) if r.contact_id == contact.pk
        ]
        assert len(mine) == 4
        assert {event.chain for event in mine} == {contact.pk % 4}
        seqs = [event.seq for event in mine]
        assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert_intact()
    assert ledger_verify().chains == 4
    # A re-run over four chains adds nothing either.
    assert consents_import(rows=rows, principal=IMPORTER).unchanged == len(rows)
    assert_intact()


def test_an_import_asks_the_database_the_same_few_times_for_one_contact_or_sixty(
    make_contact: MakeContact, purpose: Purpose, django_assert_max_num_queries: Any
) -> None:
    """No query per row: nothing in a chunk reads a contact field the import left unloaded,
    and nothing looks a row's purpose or notice up again (counts the ORM's queries; the
    append's own statements are one each per chunk)."""
    few = [make_contact() for _ in range(1)]
    many = [make_contact() for _ in range(60)]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        run([row(f"q1-{c.pk}", c, purpose) for c in few])
    with django_assert_max_num_queries(len(one.captured_queries)):
        result = run([row(f"q60-{c.pk}", c, purpose) for c in many])
    assert result.created == 60 and result.errors == []
    assert_intact()
