from __future__ import annotations

import pytest

from comms.campaigns import services
from comms.campaigns.models import CampaignStatus, Delivery
from comms.campaigns.services import CampaignInput
from comms.suppression import services as ledger

pytestmark = pytest.mark.django_db(transaction=True)


def grant(contact, purpose, staff, channel="sms"):
    return ledger.consent_grant(
        contact=contact, channel=channel, purpose=purpose, basis="consent", source="front_desk", principal=staff
    )


def test_a_campaign_sent_now_reaches_exactly_the_allowed_audience(
    brand, make_contact, purpose, staff, person, fake_lifevision, run_actors
):
    allowed = [make_contact() for _ in range(3)]
    for contact in allowed:
        grant(contact, purpose, staff)
    withdrawn = make_contact()
    grant(withdrawn, purpose, staff)
    ledger.consent_withdraw(
        contact=withdrawn, channel="sms", purpose=purpose, source="api", principal=person
    )
    never = make_contact()

    campaign = services.campaign_create(
        brand=brand,
        data=CampaignInput(name="Tilbud", channel="sms", purpose=purpose.key, text="Hei {first_name}! 20% i dag."),
    )
    services.campaign_send_now(campaign=campaign)
    run_actors()

    sent_to = sorted(m["to"] for m in fake_lifevision.messages)
    assert sent_to == sorted(c.mobile for c in allowed)
    by_contact = {d.contact_id: d for d in Delivery.objects.filter(campaign=campaign)}
    assert by_contact[withdrawn.pk].status == "denied"
    assert by_contact[withdrawn.pk].reason == "withdrawn"
    assert by_contact[never.pk].reason == "no_consent"
    assert all(by_contact[c.pk].status == "sent" for c in allowed)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert all("STOPP" in m["text"] or "Avmeld" in m["text"] for m in fake_lifevision.messages)
