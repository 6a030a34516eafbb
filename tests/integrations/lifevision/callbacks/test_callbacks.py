"""POST /hooks/lifevision/reports: signature, dedupe, delivery status, ledger effects."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.test import Client

from comms.campaigns import services
from comms.campaigns.models import CallbackReceipt, CampaignStatus, Delivery, DeliveryStatus
from comms.campaigns.services import CampaignInput
from comms.suppression import gate
from comms.suppression import services as ledger
from comms.suppression.keys import address_key
from comms.suppression.models import ConsentEvent, Suppression
from integrations.lifevision import callbacks
from integrations.lifevision.fake import DEFAULT_WEBHOOK_SECRET
from integrations.lifevision.signatures import sign
from tests.integrations.lifevision.callbacks.callback_helpers import (
    REPORTS,
    post_signed,
    report,
    sent_delivery,
)

pytestmark = pytest.mark.django_db(transaction=True)


def grant(contact, purpose, staff, channel="sms"):
    return ledger.consent_grant(
        contact=contact,
        channel=channel,
        purpose=purpose,
        basis="consent",
        source="front_desk",
        principal=staff,
    )


@pytest.fixture
def secret(settings):
    settings.LIFEVISION_WEBHOOK_SECRET = DEFAULT_WEBHOOK_SECRET
    return DEFAULT_WEBHOOK_SECRET


# --- the door: method, configuration, signature, body ----------------------------------------


_BAD_SIGNATURES = {
    "missing": lambda body, now: "",
    "wrong": lambda body, now: f"t={now},v1={'0' * 64}",
    "malformed": lambda body, now: "garbage",
    "other-secret": lambda body, now: sign("not-the-secret", body, now),
    "old": lambda body, now: sign(DEFAULT_WEBHOOK_SECRET, body, now - 400),
    "future": lambda body, now: sign(DEFAULT_WEBHOOK_SECRET, body, now + 400),
}


@pytest.mark.parametrize("case", sorted(_BAD_SIGNATURES))
@pytest.mark.parametrize("path", [REPORTS, "/hooks/lifevision/inbound"])
def test_a_callback_without_a_valid_fresh_signature_is_refused_and_not_stored(secret, path, case):
    body = json.dumps(
        {"provider_id": "lv-1", "status": "delivered", "from": "+4741234567", "to": "FIT24", "text": "STOPP"}
    ).encode()
    response = post_signed(path, raw=body, signature=_BAD_SIGNATURES[case](body, int(time.time())))
    assert response.status_code == 401
    assert "detail" in response.json()
    assert CallbackReceipt.objects.count() == 0


def test_a_signature_over_another_body_is_refused(secret):
    signed = sign(secret, b'{"provider_id": "lv-1", "status": "sent"}', int(time.time()))
    response = post_signed(REPORTS, {"provider_id": "lv-1", "status": "delivered"}, signature=signed)
    assert response.status_code == 401
    assert CallbackReceipt.objects.count() == 0


def test_without_a_configured_secret_callbacks_answer_503_not_500(settings):
    settings.LIFEVISION_WEBHOOK_SECRET = None
    response = post_signed(REPORTS, {"provider_id": "lv-1", "status": "delivered"})
    assert response.status_code == 503
    assert "detail" in response.json()


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_allowed(secret, method):
    response = getattr(Client(), method)(REPORTS)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"provider_id": "lv-1", "status": NaN}', "body"),
        (b'{"status": "delivered"}', "provider_id"),
        (b'{"provider_id": "lv-1"}', "status"),
        (b'{"provider_id": "lv-1", "status": "lost"}', "status"),
        (b'{"provider_id": "lv-1", "status": "delivered", "segment": 3, "segments": 2}', "segment"),
        (b'{"provider_id": "lv-1", "status": "delivered", "segments": "2"}', "segments"),
        (b'{"provider_id": "lv-1", "status": "delivered", "occurred_at": "yesterday"}', "occurred_at"),
        (b'{"provider_id": "lv-\\u0000", "status": "delivered"}', "body"),
    ],
)
def test_a_malformed_report_is_a_400_naming_the_field(secret, raw, field):
    response = post_signed(REPORTS, raw=raw)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert CallbackReceipt.objects.count() == 0


# --- delivery status ---------------------------------------------------------------------------


def test_a_repeated_report_is_answered_200_and_processed_once(
    secret, contact, purpose, fake_lifevision, run_actors
):
    delivery = sent_delivery(contact, purpose)
    payload = report(delivery, segments=2)
    first = post_signed(REPORTS, payload)
    second = post_signed(REPORTS, payload)
    run_actors()
    assert (first.status_code, first.json()) == (200, {"status": "accepted"})
    assert (second.status_code, second.json()) == (200, {"status": "duplicate"})
    assert CallbackReceipt.objects.count() == 1
    delivery.refresh_from_db()
    assert delivery.segments_delivered == 1
    assert delivery.status == DeliveryStatus.SENT


def test_a_two_segment_sms_is_delivered_only_when_both_segments_are(
    secret, contact, purpose, fake_lifevision, run_actors
):
    delivery = sent_delivery(contact, purpose)
    post_signed(REPORTS, report(delivery, segment=2, segments=2))
    run_actors()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.segments, delivery.segments_delivered) == ("sent", 2, 1)
    assert delivery.delivered_at is None

    post_signed(REPORTS, report(delivery, segment=1, segments=2))
    run_actors()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.segments_delivered) == ("delivered", 2)
    assert delivery.delivered_at is not None


def test_a_late_sent_or_queued_report_never_moves_a_delivered_message_back(
    secret, contact, purpose, fake_lifevision, run_actors
):
    delivery = sent_delivery(contact, purpose)
    post_signed(REPORTS, report(delivery, "delivered"))
    run_actors()
    post_signed(REPORTS, report(delivery, "sent"))
    post_signed(REPORTS, report(delivery, "queued"))
    post_signed(REPORTS, report(delivery, "expired", error_code="unknown_subscriber"))
    run_actors()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert CallbackReceipt.objects.filter(processed_at__isnull=True).count() == 0


def test_a_failed_report_records_the_error_code(secret, contact, purpose, fake_lifevision, run_actors):
    delivery = sent_delivery(contact, purpose)
    post_signed(REPORTS, report(delivery, "failed", error_code="unknown_subscriber"))
    run_actors()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("failed", "unknown_subscriber")
    assert not Suppression.objects.exists()


def test_a_report_for_an_unknown_message_is_a_harmless_no_op(secret, fake_lifevision, run_actors):
    response = post_signed(
        REPORTS, {"provider_id": "lv-nobody", "external_id": "not-a-uuid", "status": "delivered"}
    )
    run_actors()
    assert response.status_code == 200
    receipt = CallbackReceipt.objects.get()
    assert receipt.processed_at is not None
    assert receipt.outcome == "unknown delivery"


def test_a_report_that_arrives_before_the_provider_id_is_recorded_is_matched_by_external_id(
    secret, contact, purpose, fake_lifevision, run_actors
):
    delivery = sent_delivery(contact, purpose)
    payload = report(delivery)
    Delivery.objects.filter(pk=delivery.pk).update(provider_id="")
    post_signed(REPORTS, payload)
    run_actors()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.provider_id == payload["provider_id"]


# --- ledger effects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "error_code", "everywhere"),
    [
        ("sms", "blocked_recipient", True),
        ("email", "hard_bounce", True),
        ("email", "complaint", False),
    ],
)
def test_blocks_bounces_and_complaints_become_one_ledger_event_and_a_suppression(
    secret,
    make_contact,
    make_purpose,
    other_brand,
    staff,
    fake_lifevision,
    run_actors,
    channel,
    error_code,
    everywhere,
):
    purpose = make_purpose()
    contact = make_contact()
    grant(contact, purpose, staff, channel)
    twin = make_contact(brand=other_brand.key, email=contact.email, mobile=contact.mobile)
    other_purpose = make_purpose(key="k24-news", brand=other_brand)
    grant(twin, other_purpose, staff, channel)
    delivery = sent_delivery(contact, purpose, channel)

    post_signed(REPORTS, report(delivery, "failed", error_code=error_code))
    post_signed(REPORTS, report(delivery, "failed", error_code=error_code))  # a redelivery
    post_signed(REPORTS, report(delivery, "rejected", error_code=error_code))  # a second report
    run_actors()

    key = address_key(channel, contact.address_for(channel))
    events = ConsentEvent.objects.filter(action="suppress", reason=error_code, address_key=key)
    assert events.count() == 1
    assert events.get().source == "lifevision_webhook"
    assert events.get().actor == "system"
    suppression = Suppression.objects.get(address_key=key, lifted_at__isnull=True)
    assert suppression.reason == error_code
    assert suppression.brand_id == (None if everywhere else contact.brand_id)
    decision = gate.check(contact=contact, channel=channel, purpose=purpose)
    assert (decision.allowed, decision.reason) == (False, f"suppressed:{error_code}")
    other = gate.check(contact=twin, channel=channel, purpose=other_purpose)
    assert other.allowed is not everywhere
    delivery.refresh_from_db()
    expected = "failed" if error_code == "blocked_recipient" else "bounced"
    assert (delivery.status, delivery.last_error) == (expected, error_code)


def test_a_lost_broker_message_is_recovered_by_the_sweep(
    secret, contact, purpose, fake_lifevision, run_actors
):
    delivery = sent_delivery(contact, purpose)
    payload = report(delivery)
    # Stored, but the message to the worker never made it (Redis down at commit).
    CallbackReceipt.objects.create(
        provider="lifevision",
        kind="report",
        dedupe_key=callbacks.report_parse(payload).dedupe_key,
        payload=payload,
    )
    CallbackReceipt.objects.update(received_at=CallbackReceipt.objects.get().received_at.replace(year=2000))
    assert callbacks.callbacks_sweep()["receipts"] == 0  # older than the sweep's horizon: left alone
    CallbackReceipt.objects.update(received_at=delivery.sent_at)
    assert callbacks.callbacks_sweep(older_than=dt.timedelta(0))["receipts"] == 1
    run_actors()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


# --- end to end --------------------------------------------------------------------------------


def test_a_campaign_sent_through_the_fake_ends_delivered_by_its_reports(
    settings, live_server, brand, make_contact, purpose, staff, fake_lifevision, run_actors
):
    settings.PUBLIC_BASE_URL = live_server.url
    fake_lifevision.send_reports = True
    fake_lifevision.report_delay = 0.05
    contacts = [make_contact() for _ in range(3)]
    for contact in contacts:
        grant(contact, purpose, staff)
    text = "Hei {first_name}! " + "Nå er det sommertrening med 20% rabatt på alle kort i hele juni. " * 2
    campaign = services.campaign_create(
        brand=brand, data=CampaignInput(name="Sommer", channel="sms", purpose=purpose.key, text=text)
    )
    services.campaign_send_now(campaign=campaign)
    run_actors()
    assert len(fake_lifevision.messages) == 3

    for _ in range(200):  # bounded: the fake posts its reports from its own thread
        run_actors()
        deliveries = list(Delivery.objects.filter(campaign=campaign))
        if all(d.status == DeliveryStatus.DELIVERED for d in deliveries):
            break
        time.sleep(0.05)
    assert [d.status for d in deliveries] == ["delivered"] * 3
    assert all(d.segments == 2 and d.segments_delivered == 2 for d in deliveries)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
