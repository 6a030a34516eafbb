"""Ledger -> Mailchimp: a withdrawal is pushed as ``unsubscribed`` at once and retried until
Mailchimp has it; never ``delete-permanent``."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from comms.contacts.models import Contact
from comms.suppression import services as ledger
from comms.suppression.models import Purpose
from integrations.mailchimp import tasks
from integrations.mailchimp.client import MailchimpError
from integrations.mailchimp.fake import FakeMailchimp
from integrations.mailchimp.models import AudienceUnsubscribe, PropagationStatus
from integrations.mailchimp.sync import propagation_for_contact
from tests.campaigns.campaign_helpers import PERSON, grant
from tests.integrations.mailchimp.conftest import LIST_ID

pytestmark = pytest.mark.django_db


def run_push_until_done(row_id: int, limit: int = 20) -> int:
    """What the retrying actor does: call it again after each transient failure."""
    for attempt in range(1, limit + 1):
        try:
            tasks.mailchimp_unsubscribe(row_id)
        except MailchimpError as exc:
            assert not exc.permanent
            continue
        except dramatiq.Retry as retry:  # a 429: after its Retry-After
            assert retry.delay is not None and retry.delay <= 2000
            time.sleep(retry.delay / 1000)
            continue
        return attempt
    raise AssertionError("the push never succeeded")


def test_it_pushes_a_withdrawal_through_injected_failures(
    fake_mailchimp: FakeMailchimp,
    contact: Contact,
    purpose: Purpose,
    broker: StubBroker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    fake_mailchimp.put_member(LIST_ID, contact.email or "", "subscribed")
    grant(contact, purpose, "email")
    fake_mailchimp.fail_next(2, 503)  # empty bodies: the client returns them instead of raising
    fake_mailchimp.fail_next(1, 429, empty=False)

    with django_capture_on_commit_callbacks(execute=True):
        ledger.consent_withdraw(
            contact=contact, channel="email", purpose=None, source="unsubscribe_link", principal=PERSON
        )

    row = AudienceUnsubscribe.objects.get()
    queued = [m for m in broker.queues["mailchimp"].queue if m]
    assert len(queued) == 1  # enqueued after commit, on the Mailchimp queue
    assert run_push_until_done(row.pk) == 4
    assert fake_mailchimp.status_of(LIST_ID, contact.email or "") == "unsubscribed"
    row.refresh_from_db()
    assert row.status == PropagationStatus.DONE and row.attempts == 4 and row.propagated_at is not None
    assert row.email == ""  # the address is not kept once Mailchimp has it
    puts = [r for r in fake_mailchimp.requests if r["method"] == "PUT"]
    assert (
        puts[-1]["body"]["status"] == "unsubscribed" and puts[-1]["body"]["status_if_new"] == "unsubscribed"
    )
    assert not any("delete-permanent" in r["path"] for r in fake_mailchimp.requests)
    [shown] = propagation_for_contact(contact_id=contact.pk)  # what an export shows
    assert shown["status"] == "done" and shown["attempts"] == 4


def test_it_creates_an_unknown_address_as_unsubscribed(
    fake_mailchimp: FakeMailchimp,
    contact: Contact,
    broker: StubBroker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        ledger.objection_record(contact=contact, source="rights_request", principal=PERSON)
    run_push_until_done(AudienceUnsubscribe.objects.get().pk)
    assert fake_mailchimp.status_of(LIST_ID, contact.email or "") == "unsubscribed"


def test_an_erasure_is_pushed_with_the_address_read_before_it_was_blanked(
    fake_mailchimp: FakeMailchimp,
    contact: Contact,
    broker: StubBroker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from comms.rights.erasure import contact_erase

    email = contact.email or ""
    fake_mailchimp.put_member(LIST_ID, email, "subscribed")
    with django_capture_on_commit_callbacks(execute=True):
        contact_erase(contact=contact, source="rights_request", principal=PERSON)
    run_push_until_done(AudienceUnsubscribe.objects.get().pk)
    assert fake_mailchimp.status_of(LIST_ID, email) == "unsubscribed"


def test_a_forgotten_address_counts_as_propagated(
    fake_mailchimp: FakeMailchimp, contact: Contact, broker: StubBroker
) -> None:
    fake_mailchimp.forget(LIST_ID, contact.email or "")
    ledger.consent_withdraw(contact=contact, channel="email", purpose=None, source="api", principal=PERSON)
    row = AudienceUnsubscribe.objects.get()
    run_push_until_done(row.pk)
    row.refresh_from_db()
    assert row.status == PropagationStatus.DONE and "permanently deleted" in row.last_error


def test_a_service_purpose_withdrawal_leaves_mailchimp_alone(
    fake_mailchimp: FakeMailchimp, contact: Contact, make_purpose: Any, broker: StubBroker
) -> None:
    service = make_purpose(key="member-dialogue", channels=("email",), marketing=False)
    ledger.consent_withdraw(contact=contact, channel="email", purpose=service, source="api", principal=PERSON)
    assert not AudienceUnsubscribe.objects.exists()


def test_an_erasure_reaches_mailchimp_as_unsubscribed_and_the_export_shows_it(
    fake_mailchimp: FakeMailchimp,
    contact: Contact,
    purpose: Purpose,
    broker: StubBroker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from comms.rights.erasure import contact_erase
    from comms.rights.providers import erasure_plan, propagation_status
    from comms.suppression.services import Principal

    email = contact.email or ""
    fake_mailchimp.put_member(LIST_ID, email, "subscribed")
    assert {p.provider: p.status for p in erasure_plan()}["mailchimp"] == "unsubscribe_queued"

    with django_capture_on_commit_callbacks(execute=True):
        contact_erase(contact=contact, source="rights_request", principal=Principal(actor="staff"))

    row = AudienceUnsubscribe.objects.get(contact=contact)
    run_push_until_done(row.pk)
    assert fake_mailchimp.status_of(LIST_ID, email) == "unsubscribed"  # never deleted permanently
    pushes: Any = propagation_status(contact_id=contact.pk)["mailchimp"]["unsubscribe_pushes"]
    assert [(p["list_id"], p["status"]) for p in pushes] == [(LIST_ID, PropagationStatus.DONE)]
