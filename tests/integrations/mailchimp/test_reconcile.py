"""Reconciliation finds a planted divergence in both directions and reports counts."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from comms.contacts.models import Brand
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent, Purpose, Suppression
from integrations.mailchimp.fake import FakeMailchimp
from integrations.mailchimp.sync import reconcile
from tests.campaigns.campaign_helpers import STAFF, grant
from tests.integrations.mailchimp.conftest import LIST_ID

pytestmark = pytest.mark.django_db


def test_it_repairs_divergence_both_ways(
    fake_mailchimp: FakeMailchimp, brand: Brand, purpose: Purpose, make_contact: Any, broker: Any
) -> None:
    left_in_mailchimp, suppressed_here, fine = make_contact(), make_contact(), make_contact()
    for contact in (left_in_mailchimp, fine):
        grant(contact, purpose, "email")
        fake_mailchimp.put_member(LIST_ID, contact.email or "", "subscribed")
    # Unsubscribed inside Mailchimp, and the webhook never reached us.
    fake_mailchimp.put_member(LIST_ID, left_in_mailchimp.email or "", "unsubscribed")
    fake_mailchimp.put_member(LIST_ID, "bounced@example.no", "cleaned")
    # Suppressed in the ledger (an address-only suppression is never pushed at once), still subscribed there.
    ledger.suppression_add(
        channel="email",
        address=suppressed_here.email or "",
        reason="hard_bounce",
        source="api",
        principal=STAFF,
        brand=brand,
    )
    fake_mailchimp.put_member(LIST_ID, suppressed_here.email or "", "subscribed")

    out = StringIO()
    call_command("mailchimp_reconcile", stdout=out)
    counts = json.loads(out.getvalue())

    assert counts["recorded"] == 2 and counts["pushed"] == 1
    assert (
        ConsentEvent.objects.filter(
            contact=left_in_mailchimp, action="withdraw", source="mailchimp_webhook"
        ).count()
        == 1
    )
    assert Suppression.objects.filter(reason="hard_bounce", brand__isnull=True).count() == 1
    assert fake_mailchimp.status_of(LIST_ID, suppressed_here.email or "") == "unsubscribed"
    assert fake_mailchimp.status_of(LIST_ID, fine.email or "") == "subscribed"

    again = reconcile()
    assert again.get("recorded", 0) == 0 and again.get("pushed", 0) == 0


def test_the_command_refuses_without_configuration(settings: Any, db: Any) -> None:
    from django.core.management.base import CommandError

    settings.MAILCHIMP_API_KEY = None
    with pytest.raises(CommandError):
        call_command("mailchimp_reconcile")
