"""A Mailchimp campaign goes to a static segment of exactly the gate's allowed addresses, and a
withdrawal between the snapshot and the send call is taken out before the send."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from django.utils import timezone

from comms.campaigns import sending, services
from comms.campaigns.models import Campaign, CampaignStatus, Delivery
from comms.campaigns.services import CampaignInput
from comms.contacts.models import Brand, Contact
from comms.errors import InvalidInput
from comms.suppression import services as ledger
from comms.suppression.models import Purpose
from integrations.mailchimp.client import MailchimpClient
from integrations.mailchimp.fake import FakeMailchimp
from integrations.mailchimp.models import CampaignSend
from tests.campaigns.campaign_helpers import PERSON, grant
from tests.integrations.mailchimp.conftest import LIST_ID

pytestmark = pytest.mark.django_db


def newsletter(brand: Brand, purpose: Purpose) -> Campaign:
    return services.campaign_create(
        brand=brand,
        data=CampaignInput(
            name="Nyhetsbrev",
            channel="email",
            provider="mailchimp",
            purpose=purpose.key,
            subject="Nytt fra FIT24",
            html="<p>Hei</p>",
            text="Hei",
        ),
    )


def start(campaign: Campaign, capture: Any) -> None:
    services.campaign_send_now(campaign=campaign)
    with capture(execute=False):
        services.campaign_start(campaign_id=campaign.pk)


def test_the_segment_holds_exactly_the_allowed_and_a_late_withdrawal_is_removed_before_send(
    fake_mailchimp: FakeMailchimp,
    brand: Brand,
    purpose: Purpose,
    make_contact: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    stays, leaves, never, stopped = (make_contact() for _ in range(4))
    for contact in (stays, leaves, stopped):
        grant(contact, purpose, "email")
    ledger.consent_withdraw(contact=stopped, channel="email", purpose=None, source="api", principal=PERSON)
    fake_mailchimp.put_member(LIST_ID, never.email or "", "subscribed")  # in Mailchimp, no consent here
    campaign = newsletter(brand, purpose)
    start(campaign, django_capture_on_commit_callbacks)

    original = MailchimpClient.campaign_set_content

    def withdraw_then_set_content(self: MailchimpClient, campaign_id: str, *, html: str, text: str) -> None:
        # After the snapshot and the segment, before the final diff and send.
        ledger.consent_withdraw(
            contact=leaves, channel="email", purpose=None, source="unsubscribe_link", principal=PERSON
        )
        original(self, campaign_id, html=html, text=text)

    monkeypatch.setattr(MailchimpClient, "campaign_set_content", withdraw_then_set_content)
    assert sending.segment_send(campaign_id=campaign.pk) == "sent"

    requests = fake_mailchimp.requests
    adds = [r for r in requests if r["method"] == "POST" and "/segments/" in r["path"]]
    assert sorted(adds[0]["body"]["members_to_add"]) == sorted([stays.email, leaves.email])
    removal = next(i for i, r in enumerate(requests) if r["body"] and r["body"].get("members_to_remove"))
    send_call = next(i for i, r in enumerate(requests) if r["path"].endswith("/actions/send"))
    assert requests[removal]["body"]["members_to_remove"] == [leaves.email]
    assert removal < send_call
    sent = fake_mailchimp.sent
    assert len(sent) == 1 and sent[0]["recipients"] == [stays.email]

    deliveries = {d.contact_id: d for d in Delivery.objects.filter(campaign=campaign)}
    assert (deliveries[stays.pk].status, deliveries[stays.pk].reason) == ("sent", "consent")
    assert (deliveries[leaves.pk].status, deliveries[leaves.pk].reason) == ("denied", "suppressed:withdrawn")
    assert (deliveries[never.pk].status, deliveries[never.pk].reason) == ("denied", "no_consent")
    assert deliveries[stopped.pk].status == "denied" and deliveries[stopped.pk].reason.startswith(
        "suppressed:"
    )
    evidence = CampaignSend.objects.get(campaign=campaign)
    assert sorted(d for d, _ in evidence.members) == sorted(
        [deliveries[stays.pk].pk, deliveries[leaves.pk].pk]
    )
    assert [r[0] for r in evidence.removed] == [deliveries[leaves.pk].pk]
    assert evidence.snapshot_at <= evidence.final_diff_at <= evidence.sent_at  # type: ignore[operator]
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    # A repeat of the actor sends nothing more.
    assert sending.segment_send(campaign_id=campaign.pk) == "not sending"
    assert len(fake_mailchimp.sent) == 1


def test_a_transient_failure_is_retried_without_a_second_campaign(
    fake_mailchimp: FakeMailchimp,
    brand: Brand,
    purpose: Purpose,
    contact: Contact,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grant(contact, purpose, "email")
    campaign = newsletter(brand, purpose)
    start(campaign, django_capture_on_commit_callbacks)
    original_send = MailchimpClient.campaign_send
    calls = {"n": 0}

    def flaky(self: MailchimpClient, campaign_id: str) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            fake_mailchimp.fail_next(1, 503)
        original_send(self, campaign_id)

    monkeypatch.setattr(MailchimpClient, "campaign_send", flaky)
    with pytest.raises(sending.RetryLater):
        sending.segment_send(campaign_id=campaign.pk)
    assert Delivery.objects.get(campaign=campaign).status == "queued"
    record = CampaignSend.objects.get(campaign=campaign)
    assert record.attempts == 1 and record.failing_since is not None and "503" in record.last_error
    assert sending.segment_send(campaign_id=campaign.pk) == "sent"
    assert len(fake_mailchimp.campaigns) == 1 and len(fake_mailchimp.sent) == 1


def test_an_sms_campaign_cannot_use_mailchimp(
    fake_mailchimp: FakeMailchimp, brand: Brand, purpose: Purpose
) -> None:
    with pytest.raises(InvalidInput):
        services.campaign_create(
            brand=brand,
            data=CampaignInput(
                name="x", channel="sms", provider="mailchimp", purpose=purpose.key, text="Hei"
            ),
        )


def test_a_brand_without_an_audience_cannot_use_mailchimp(
    fake_mailchimp: FakeMailchimp, brand: Brand, purpose: Purpose, settings: Any
) -> None:
    settings.MAILCHIMP_AUDIENCES = {}
    with pytest.raises(InvalidInput):
        newsletter(brand, purpose)


def test_an_outage_past_the_window_fails_the_messages_honestly_and_a_retry_sends_once(
    fake_mailchimp: FakeMailchimp,
    brand: Brand,
    purpose: Purpose,
    make_contact: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.SEND_RETRY_WINDOW = 60
    settings.PROVIDER_BREAKER_FAILURES = 2
    settings.PROVIDER_PROBE_INTERVAL = 1.0
    for contact in (make_contact(), make_contact()):
        grant(contact, purpose, "email")
    campaign = newsletter(brand, purpose)
    start(campaign, django_capture_on_commit_callbacks)
    fake_mailchimp.outage()

    for _ in range(3):  # two failures open the circuit; the third try is held, not called
        with pytest.raises(sending.RetryLater):
            sending.segment_send(campaign_id=campaign.pk)
    calls = len(fake_mailchimp.requests)
    with pytest.raises(sending.RetryLater):
        sending.segment_send(campaign_id=campaign.pk)
    assert len(fake_mailchimp.requests) == calls
    campaign.refresh_from_db()
    assert campaign.provider_paused_since is not None  # "paused — provider unavailable"

    CampaignSend.objects.filter(campaign=campaign).update(
        failing_since=timezone.now() - dt.timedelta(seconds=61)
    )
    time.sleep(1.05)
    assert sending.segment_send(campaign_id=campaign.pk) == "failed"
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED
    assert "provider_unavailable: 2" in campaign.status_detail
    assert {d.status for d in Delivery.objects.filter(campaign=campaign)} == {"failed"}

    fake_mailchimp.recover()
    time.sleep(1.05)
    with django_capture_on_commit_callbacks(execute=False):
        _, queued = services.campaign_retry_failed(campaign=campaign)
    assert queued == 2
    assert sending.segment_send(campaign_id=campaign.pk) == "sent"
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    assert campaign.provider_paused_since is None
    assert len(fake_mailchimp.campaigns) == 1 and len(fake_mailchimp.sent) == 1


def test_a_429_from_mailchimp_waits_and_uses_up_nothing(
    fake_mailchimp: FakeMailchimp,
    brand: Brand,
    purpose: Purpose,
    contact: Contact,
    django_capture_on_commit_callbacks: Any,
) -> None:
    grant(contact, purpose, "email")
    campaign = newsletter(brand, purpose)
    start(campaign, django_capture_on_commit_callbacks)
    fake_mailchimp.fail_next(1, 429, empty=False)
    with pytest.raises(sending.RetryLater) as retry:
        sending.segment_send(campaign_id=campaign.pk)
    assert retry.value.delay_ms >= 1000
    record = CampaignSend.objects.get(campaign=campaign)
    assert (record.attempts, record.failing_since) == (0, None)
    time.sleep(1.05)
    assert sending.segment_send(campaign_id=campaign.pk) == "sent"
