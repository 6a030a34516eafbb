"""Audience sync: an effective email consent upserts the member; re-consent of a member
Mailchimp holds as unsubscribed goes through ``pending`` (its double opt-in)."""

from __future__ import annotations

from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker

from comms.contacts.models import Contact
from comms.suppression import services as ledger
from comms.suppression.models import Purpose
from integrations.mailchimp.fake import FakeMailchimp
from integrations.mailchimp.sync import member_sync
from tests.campaigns.campaign_helpers import PERSON, grant
from tests.integrations.mailchimp.conftest import LIST_ID

pytestmark = pytest.mark.django_db


def test_a_consent_upserts_the_member_as_subscribed_with_merge_fields(
    fake_mailchimp: FakeMailchimp,
    make_contact: Any,
    purpose: Purpose,
    broker: StubBroker,
    django_capture_on_commit_callbacks: Any,
) -> None:
    contact = make_contact(first_name="Kari")
    with django_capture_on_commit_callbacks(execute=True):
        grant(contact, purpose, "email")
    assert len([m for m in broker.queues["mailchimp"].queue if m]) == 1
    assert member_sync(contact_id=contact.pk, purpose_id=purpose.pk) == "subscribed"
    member = fake_mailchimp.member(LIST_ID, contact.email or "")
    assert (
        member is not None and member["status"] == "subscribed" and member["merge_fields"]["FNAME"] == "Kari"
    )


def test_reconsent_of_an_unsubscribed_member_goes_through_pending(
    fake_mailchimp: FakeMailchimp, contact: Contact, purpose: Purpose, broker: StubBroker
) -> None:
    fake_mailchimp.put_member(LIST_ID, contact.email or "", "unsubscribed")
    grant(contact, purpose, "email")
    assert member_sync(contact_id=contact.pk, purpose_id=purpose.pk) == "pending"
    assert fake_mailchimp.status_of(LIST_ID, contact.email or "") == "pending"


def test_no_upsert_once_the_consent_is_withdrawn(
    fake_mailchimp: FakeMailchimp, contact: Contact, purpose: Purpose, broker: StubBroker
) -> None:
    grant(contact, purpose, "email")
    ledger.consent_withdraw(contact=contact, channel="email", purpose=None, source="api", principal=PERSON)
    assert member_sync(contact_id=contact.pk, purpose_id=purpose.pk).startswith("not allowed")
    assert fake_mailchimp.member(LIST_ID, contact.email or "") is None
