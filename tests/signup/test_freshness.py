"""Consent freshness: a consent older than the purpose's lifetime or below its minimum notice
version is denied with its reason; marketers preview who falls out in the next N days and send
them a refresh request as an ordinary, gated campaign."""

from __future__ import annotations

import re

import pytest

from comms.suppression import gate
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent
from comms.suppression.selectors import freshness_preview
from comms.web.messages import member_message_send
from comms.web.models import MemberMessage
from tests.web.conftest import token_for

STAFF = ledger.Principal(actor="staff", recorded_by="test")


def grant(contact, purpose, channel="email"):
    return ledger.consent_grant(
        contact=contact,
        channel=channel,
        purpose=purpose,
        basis="consent",
        source="front_desk",
        principal=STAFF,
    )


@pytest.fixture
def yearly(make_purpose):
    return make_purpose(key="fit24-yearly", channels=("email",), consent_lifetime_days=365)


@pytest.fixture
def people(make_contact, yearly, clock):
    """Consents given 400 days ago (expired), 350 days ago (expires in 15 days), 10 days ago."""
    clock.advance(days=-400)
    expired = make_contact(first_name="Expired")
    grant(expired, yearly)
    clock.advance(days=50)
    soon = make_contact(first_name="Soon")
    grant(soon, yearly)
    clock.advance(days=340)
    fresh = make_contact(first_name="Fresh")
    grant(fresh, yearly)
    clock.advance(days=10)
    return {"expired": expired, "soon": soon, "fresh": fresh}


def test_a_consent_older_than_the_lifetime_is_denied_as_expired(people, yearly):
    decision = gate.check(contact=people["expired"], channel="email", purpose=yearly)
    assert (decision.allowed, decision.reason) == (False, "consent_expired")
    assert gate.check(contact=people["soon"], channel="email", purpose=yearly).allowed


def test_a_consent_below_the_minimum_notice_version_is_denied_as_stale(make_contact, make_purpose):
    purpose = make_purpose(key="fit24-offers", channels=("email",))
    old, renewed = make_contact(), make_contact()
    grant(old, purpose)
    ledger.purpose_notice_publish(purpose=purpose, text="Now also SMS offers")
    grant(renewed, purpose)
    purpose = ledger.purpose_update(purpose=purpose, min_notice_version=2)

    decision = gate.check(contact=old, channel="email", purpose=purpose)
    assert (decision.allowed, decision.reason) == (False, "stale_notice")
    assert gate.check(contact=renewed, channel="email", purpose=purpose).allowed
    preview = freshness_preview(purpose=purpose, days=30)
    assert preview.already_out["email"] == {"stale_notice": 1}
    assert preview.falling_out["email"] == []


def test_the_preview_lists_who_falls_out_in_the_next_days(people, yearly):
    preview = freshness_preview(purpose=yearly, days=30)
    assert preview.falling_out == {"email": [people["soon"].pk]}
    assert preview.already_out == {"email": {"consent_expired": 1}}
    assert freshness_preview(purpose=yearly, days=5).falling_out == {"email": []}


def test_marketers_preview_and_create_a_refresh_campaign_sent_through_the_gate(people, yearly, api):
    marketer = api("marketer")
    response = marketer.post(f"/purposes/{yearly.pk}/freshness-preview?days=30")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["falling_out"] == {"email": [people["soon"].pk]}
    assert body["falling_out_count"] == {"email": 1}
    assert body["already_out"] == {"email": {"consent_expired": 1}}
    assert api("staff").post(f"/purposes/{yearly.pk}/freshness-preview?days=30").status_code == 403

    created = marketer.post(
        f"/purposes/{yearly.pk}/refresh-campaign",
        {
            "days": 30,
            "channel": "email",
            "subject": "Vil du fortsatt høre fra oss?",
            "text": "Forny samtykket ditt.",
        },
    )
    assert created.status_code == 201, created.content
    campaign = created.json()["campaign"]
    assert campaign["purpose"] == "fit24-yearly" and campaign["status"] == "draft"
    assert campaign["audience"] == {"contact_ids": [people["soon"].pk]}

    preview = marketer.post(f"/campaigns/{campaign['id']}/preview").json()
    assert (preview["audience"], preview["would_send"]) == (1, 1)

    nobody = marketer.post(
        f"/purposes/{yearly.pk}/refresh-campaign",
        {"days": 1, "channel": "email", "subject": "x", "text": "y"},
    )
    assert nobody.status_code == 409  # nobody falls out within a day
    assert nobody.json()["field"] == "days"


def test_the_person_renews_from_the_preference_centre_and_drops_out_of_the_preview(
    people, yearly, browser, fake_lifevision
):
    soon, fresh = people["soon"], people["fresh"]
    assert "Forny samtykket" not in browser.get(f"/preferences/{token_for(fresh, None)}").content.decode()
    path = f"/preferences/{token_for(soon, None)}"
    assert "Forny samtykket" in browser.get(path).content.decode()

    response = browser.submit(path, {"renew": str(yearly.pk)})

    assert "Vi har sendt en bekreftelseslenke" in response.content.decode()
    grant = ConsentEvent.objects.filter(contact=soon).latest("pk")
    assert (grant.action, grant.pending_confirmation) == ("grant", True)
    assert gate.check(contact=soon, channel="email", purpose=yearly).allowed  # the old consent still works
    [message] = MemberMessage.objects.filter(contact=soon)
    assert member_message_send(message_id=message.pk) == "sent"
    link = re.search(r"http://\S+(/confirm/\S+)", fake_lifevision.messages[-1]["text"])
    assert link
    browser.submit(link.group(1), {})

    assert freshness_preview(purpose=yearly, days=30).falling_out == {"email": []}
    assert "Forny samtykket" not in browser.get(path).content.decode()
