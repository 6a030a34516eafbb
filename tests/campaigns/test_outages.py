"""A provider outage or throttling never loses a campaign (issue 15): transient failures are
retried for a window in time with jittered backoff, 429s slow every sender down and use up
nothing, a circuit breaker pauses a provider and resumes by itself, endings are honest and the
failed messages can be retried through the gate. Short windows via settings; the fake is the
project's own LifeVision (down for a while, then back; a 429 storm)."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

import pytest
from django.utils import timezone

from comms.campaigns import compose, providers, sending, services
from comms.campaigns.models import Campaign, CampaignStatus, Delivery, Reply, ReplyStatus
from comms.campaigns.sending import RetryLater
from comms.core import metrics
from comms.errors import Conflict
from integrations import health
from tests.campaigns.campaign_helpers import (
    Drain,
    WorkerKilled,
    age_enqueued,
    grant,
    make_campaign,
    received_to,
    statuses,
    withdraw_all,
)


@pytest.fixture
def drain(broker: Any, django_capture_on_commit_callbacks: Any) -> Drain:
    return Drain(broker, django_capture_on_commit_callbacks)


@pytest.fixture
def breaker(settings: Any) -> Any:
    """Three failures in a row open the circuit; it is probed every half second (long enough
    that a loaded machine does not probe between two steps of a test)."""
    settings.PROVIDER_BREAKER_FAILURES = 3
    settings.PROVIDER_PROBE_INTERVAL = 0.5
    return settings


def _consented(make_contact: Any, purpose: Any, n: int, channel: str = "sms") -> list[Any]:
    contacts = [make_contact(first_name=f"Person{i}") for i in range(n)]
    for contact in contacts:
        grant(contact, purpose, channel)
    return contacts


def _start(drain: Drain, campaign: Campaign) -> list[int]:
    """Send now and create the deliveries; returns the ids of the enqueued batches' deliveries."""
    drain.call(services.campaign_send_now, campaign=campaign)
    assert drain.step(queue_name="campaigns")
    return list(Delivery.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))


def _transitions(to: str) -> float:
    return float(metrics.CIRCUIT_TRANSITIONS.labels(provider="lifevision", to=to)._value.get())


# --- the circuit breaker ----------------------------------------------------------------------


@pytest.mark.django_db
def test_repeated_failures_open_the_circuit_and_the_campaign_shows_paused_provider_unavailable(
    brand, purpose, make_contact, fake_lifevision, drain, breaker, api, caplog
):
    _consented(make_contact, purpose, 3)
    campaign = make_campaign(brand, purpose)
    ids = _start(drain, campaign)
    fake_lifevision.outage()
    opened_before = _transitions("open")

    for _ in range(3):
        with pytest.raises(RetryLater):
            sending.deliveries_send(delivery_ids=ids)
    assert fake_lifevision.requests == 3
    assert not health.state("lifevision").available
    assert _transitions("open") == opened_before + 1
    assert any("circuit opened" in r.getMessage() for r in caplog.records)

    # Open: the next batch is held back before the gate and the call; nothing is used up.
    with pytest.raises(RetryLater) as held:
        sending.deliveries_send(delivery_ids=ids)
    assert fake_lifevision.requests == 3
    assert held.value.delay_ms <= 1000
    assert {(d.status, d.attempts) for d in Delivery.objects.filter(campaign=campaign)} == {("queued", 3)}

    body = api("marketer").get(f"/campaigns/{campaign.pk}").json()
    assert body["status"] == "sending"
    assert body["state"] == "paused — provider unavailable"
    assert body["provider_paused_since"] is not None

    # The provider comes back: the probe (a real hand-off, after the gate) closes the circuit.
    fake_lifevision.recover()
    closed_before = _transitions("closed")
    time.sleep(0.55)
    sending.deliveries_send(delivery_ids=ids)
    assert health.state("lifevision").available
    assert _transitions("closed") == closed_before + 1
    assert any("answers again" in r.getMessage() for r in caplog.records)
    body = api("marketer").get(f"/campaigns/{campaign.pk}").json()
    assert (body["status"], body["state"], body["provider_paused_since"]) == ("sent", "sent", None)
    assert statuses(campaign) == {"sent": 3}


@pytest.mark.django_db
def test_only_one_caller_probes_an_open_circuit_at_a_time(settings, breaker):
    for _ in range(3):
        health.record_failure("lifevision")
    time.sleep(0.55)
    assert health.admit("lifevision") is True  # the probe
    with pytest.raises(health.Held) as held:
        health.admit("lifevision")  # everyone else waits for its answer
    assert held.value.reason == "provider_unavailable"
    health.record_failure("lifevision")  # the probe failed: open, next probe later
    with pytest.raises(health.Held):
        health.admit("lifevision")
    time.sleep(0.55)
    assert health.admit("lifevision") is True
    assert health.record_success("lifevision") is True
    assert health.admit("lifevision") is False


def test_the_state_is_kept_in_process_without_redis(settings, breaker):
    settings.REDIS_URL = None
    health.reset()
    for _ in range(3):
        health.record_failure("lifevision")
    assert not health.state("lifevision").available
    with pytest.raises(health.Held):
        health.admit("lifevision")
    health.record_success("lifevision")
    assert health.admit("lifevision") is False
    health.reset()


def test_backoff_grows_exponentially_with_jitter_up_to_its_maximum(settings):
    settings.SEND_BACKOFF_MIN, settings.SEND_BACKOFF_MAX = 2.0, 300.0
    for failures, full in [(1, 2.0), (2, 4.0), (5, 32.0), (9, 300.0), (40, 300.0)]:
        samples = [health.backoff(failures) for _ in range(200)]
        assert all(full / 2 <= s <= full for s in samples)
        assert len({round(s, 6) for s in samples}) > 100  # jittered, not one value


# --- 429: slow down, never a failure ----------------------------------------------------------


def test_a_429_pauses_every_sender_and_halves_the_shared_rate_until_it_recovers(settings):
    settings.PROVIDER_RATE_LIMITS = {"lifevision": 40}
    settings.PROVIDER_THROTTLE_RECOVERY = 1
    assert health.current_rate("lifevision") == 40
    health.record_throttle("lifevision", 0.1)
    with pytest.raises(health.Held) as held:
        health.admit("lifevision")
    assert held.value.reason == "throttled" and 0.1 * 0.5 <= held.value.delay_s <= 0.2
    assert health.current_rate("lifevision") == 20
    for _ in range(5):
        health.record_throttle("lifevision", 0.1)
    assert health.current_rate("lifevision") == 4  # never below a tenth of the full rate
    assert health.state("lifevision").available  # a 429 is no outage
    time.sleep(0.15)
    assert health.admit("lifevision") is False
    time.sleep(1.05)
    assert health.current_rate("lifevision") == 40


def test_the_rate_limit_is_shared_and_holds_callers_back_beyond_it(settings):
    settings.PROVIDER_RATE_LIMITS = {"lifevision": 3}
    admitted = 0
    started = int(time.time())
    for _ in range(6):
        try:
            health.admit("lifevision", wait=False)
            admitted += 1
        except health.Held as exc:
            assert exc.reason == "rate_limited"
    if int(time.time()) == started:  # all within one second's window (else a new one began)
        assert admitted == 3
    assert admitted >= 3


@pytest.mark.django_db(transaction=True)
def test_a_429_storm_ends_with_every_message_sent_once_and_nothing_failed(
    brand, purpose, make_contact, fake_lifevision, settings, run_actors
):
    settings.SEND_BATCH_SIZE = 3
    settings.PROVIDER_THROTTLE_RECOVERY = 1
    allowed = _consented(make_contact, purpose, 12)
    campaign = make_campaign(brand, purpose)
    fake_lifevision.throttle(0.8, retry_after=0.05)

    services.campaign_send_now(campaign=campaign)
    run_actors()

    assert fake_lifevision.failed_requests >= 4
    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    deliveries = list(Delivery.objects.filter(campaign=campaign))
    assert {(d.status, d.failing_since) for d in deliveries} == {("sent", None)}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


# --- an outage that ends: every message goes out after recovery, once ------------------------


@pytest.mark.django_db(transaction=True)
def test_a_provider_down_for_a_while_then_back_gets_every_message_once(
    brand, purpose, make_contact, fake_lifevision, breaker, settings, run_actors, caplog
):
    settings.SEND_BATCH_SIZE = 4
    settings.SEND_RETRY_WINDOW = 300
    settings.SEND_BACKOFF_MIN, settings.SEND_BACKOFF_MAX = 0.05, 0.2
    allowed = _consented(make_contact, purpose, 16)
    campaign = make_campaign(brand, purpose)
    fake_lifevision.outage(seconds=1.0)

    services.campaign_send_now(campaign=campaign)
    run_actors()

    assert fake_lifevision.failed_requests >= 3
    assert any("circuit opened" in r.getMessage() for r in caplog.records)
    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    assert len(fake_lifevision.messages) == 16
    assert statuses(campaign) == {"sent": 16}
    campaign.refresh_from_db()
    assert (campaign.status, campaign.provider_paused_since) == (CampaignStatus.SENT, None)
    assert health.state("lifevision").available


@pytest.mark.django_db
def test_workers_killed_during_the_outage_lose_and_duplicate_nothing(
    brand, purpose, make_contact, fake_lifevision, drain, breaker, settings, monkeypatch
):
    settings.SEND_BATCH_SIZE = 3
    allowed = _consented(make_contact, purpose, 9)
    campaign = make_campaign(brand, purpose)
    _start(drain, campaign)
    fake_lifevision.outage()
    for _ in range(6):  # the batches fail, the circuit opens, the rest are held
        drain.step(queue_name="send")
    assert not health.state("lifevision").available

    # Every worker dies: the broker loses all it held (the worst case).
    drain.broker.flush_all()
    fake_lifevision.recover()
    time.sleep(0.55)

    # The first hand-off after recovery dies between the provider's answer and the commit.
    real_send = sending._send
    calls = {"n": 0}

    def dies_once(provider: str, messages: Any) -> Any:
        results = real_send(provider, messages)
        calls["n"] += 1
        if calls["n"] == 1:
            raise WorkerKilled
        return results

    monkeypatch.setattr(sending, "_send", dies_once)
    age_enqueued(campaign)  # the sweep finds what nobody picked up
    assert drain.call(services.campaigns_tick)["requeued"] == 9
    drain(swallow=(WorkerKilled,))
    age_enqueued(campaign)
    drain.call(services.campaigns_tick)
    drain()

    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    assert len(fake_lifevision.messages) == 9  # the killed batch's retry was a duplicate, dropped
    assert statuses(campaign) == {"sent": 9}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


@pytest.mark.django_db
def test_quiet_hours_during_an_outage_defer_to_the_next_window_never_fail(
    brand, purpose, make_contact, fake_lifevision, drain, breaker, settings
):
    settings.SEND_RETRY_WINDOW = 3600
    _consented(make_contact, purpose, 2)
    campaign = make_campaign(brand, purpose)
    ids = _start(drain, campaign)
    fake_lifevision.outage()
    for _ in range(4):
        with pytest.raises(RetryLater):
            sending.deliveries_send(delivery_ids=ids)
    assert all(d.failing_since for d in Delivery.objects.filter(campaign=campaign))

    # 21:00 comes while the provider is still down.
    local = timezone.now().astimezone(sending.OSLO)
    settings.SMS_SEND_WINDOW = ((0, 0), (0, 1)) if local.hour >= 1 else ((23, 0), (23, 1))
    sending.deliveries_send(delivery_ids=ids)

    deliveries = list(Delivery.objects.filter(campaign=campaign))
    assert {(d.status, d.reason, d.failing_since) for d in deliveries} == {("deferred", "quiet_hours", None)}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING


# --- honest endings and the retry of failed messages ------------------------------------------


@pytest.mark.django_db
def test_an_invalid_recipient_fails_only_its_message_and_the_campaign_ends_sent_with_failures(
    brand, purpose, make_contact, fake_lifevision, drain, api
):
    ok, bad = _consented(make_contact, purpose, 2)
    fake_lifevision.block(bad.mobile)
    campaign = make_campaign(brand, purpose)
    _start(drain, campaign)
    drain()

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT_WITH_FAILURES
    assert campaign.status_detail == "1 messages failed (rejected:blocked_recipient: 1)"
    body = api("marketer").get(f"/campaigns/{campaign.pk}").json()
    assert body["failures"] == {"count": 1, "by_reason": {"rejected:blocked_recipient": 1}}
    assert body["state"] == "sent with failures"
    # A refusal of the recipient is not retried: it would be refused again.
    assert api("marketer").post(f"/campaigns/{campaign.pk}/retry-failed").status_code == 409


@pytest.mark.django_db
def test_a_400_for_a_whole_batch_fails_only_the_bad_message(
    brand, purpose, make_contact, fake_lifevision, drain, monkeypatch
):
    contacts = _consented(make_contact, purpose, 5)
    bad = contacts[3]
    real_message = compose.message_for

    def one_malformed(campaign: Campaign, delivery: Delivery) -> Any:
        message = real_message(campaign, delivery)
        if delivery.contact_id == bad.pk:
            return providers.OutboundMessage(**{**message.__dict__, "text": ""})  # the fake answers 400
        return message

    monkeypatch.setattr(sending, "message_for", one_malformed)
    campaign = make_campaign(brand, purpose)
    _start(drain, campaign)
    drain()

    by_contact = {d.contact_id: d for d in Delivery.objects.filter(campaign=campaign)}
    assert by_contact[bad.pk].status == "failed" and "400" in by_contact[bad.pk].last_error
    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in contacts if c != bad)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT_WITH_FAILURES
    assert "provider_error: 1" in campaign.status_detail


@pytest.mark.django_db
def test_a_marketer_retries_the_failed_messages_through_the_gate_again(
    brand, purpose, make_contact, fake_lifevision, drain, settings, api
):
    settings.SEND_RETRY_WINDOW = 60
    stays, leaves, third = _consented(make_contact, purpose, 3)
    campaign = make_campaign(brand, purpose)
    ids = _start(drain, campaign)
    fake_lifevision.outage()
    with pytest.raises(RetryLater):
        sending.deliveries_send(delivery_ids=ids)
    Delivery.objects.filter(campaign=campaign).update(failing_since=timezone.now() - dt.timedelta(seconds=61))
    sending.deliveries_send(delivery_ids=ids)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED
    assert api("marketer").get(f"/campaigns/{campaign.pk}").json()["failures"] == {
        "count": 3,
        "by_reason": {"provider_unavailable": 3},
    }

    fake_lifevision.recover()
    event = withdraw_all(leaves)
    assert api("staff").post(f"/campaigns/{campaign.pk}/retry-failed").status_code == 403
    assert api("marketer").post("/campaigns/999999/retry-failed").status_code == 404
    with drain.capture(execute=True):
        response = api("marketer").post(f"/campaigns/{campaign.pk}/retry-failed")
    assert response.status_code == 200, response.content
    assert response.json()["queued"] == 3
    assert response.json()["campaign"]["status"] == "sending"
    drain()

    assert received_to(fake_lifevision.messages) == {stays.mobile: 1, third.mobile: 1}
    retried = {d.contact_id: d for d in Delivery.objects.filter(campaign=campaign)}
    assert (retried[leaves.pk].status, retried[leaves.pk].decision_event_id) == ("denied", event.pk)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.status_detail) == (CampaignStatus.SENT, "")
    with pytest.raises(Conflict):
        services.campaign_retry_failed(campaign=campaign)


@pytest.mark.django_db
def test_the_admin_shows_the_pause_and_retries_failed_deliveries(
    brand, purpose, make_contact, fake_lifevision, drain, settings, admin_client
):
    _consented(make_contact, purpose, 2)
    campaign = make_campaign(brand, purpose)
    ids = _start(drain, campaign)
    Campaign.objects.filter(pk=campaign.pk).update(provider_paused_since=timezone.now())
    page = admin_client.get("/admin/campaigns/campaign/")
    assert "paused — provider unavailable" in page.content.decode()

    fake_lifevision.outage()
    with pytest.raises(RetryLater):
        sending.deliveries_send(delivery_ids=ids)
    Delivery.objects.filter(campaign=campaign).update(failing_since=timezone.now() - dt.timedelta(days=1))
    sending.deliveries_send(delivery_ids=ids)
    fake_lifevision.recover()
    detail = admin_client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert "provider_unavailable: 2" in detail
    with drain.capture(execute=True):
        response = admin_client.post(
            "/admin/campaigns/campaign/",
            {"action": "retry_failed", "_selected_action": [campaign.pk]},
            follow=True,
        )
    assert "2 failed messages queued again" in response.content.decode()
    drain()
    assert statuses(campaign) == {"sent": 2}


# --- service messages: the same rules ---------------------------------------------------------


def _reply(make_contact: Any) -> Reply:
    from comms.campaigns.models import CallbackReceipt

    receipt = CallbackReceipt.objects.create(
        provider="lifevision", kind="inbound", dedupe_key=str(time.time_ns()), payload={}
    )
    return Reply.objects.create(
        inbound_receipt=receipt, keyword="stopp", to="+4741234567", sender="2020", text="Du er meldt av."
    )


@pytest.mark.django_db
def test_a_stopp_reply_waits_out_an_outage_and_a_429_then_goes_once(make_contact, fake_lifevision, breaker):
    reply = _reply(make_contact)
    fake_lifevision.fail_next(1, status=429, retry_after=0.05)
    with pytest.raises(RetryLater) as throttled:
        sending.reply_send(reply_id=reply.pk)
    assert throttled.value.delay_ms >= 50
    reply.refresh_from_db()
    assert (reply.status, reply.attempts) == (ReplyStatus.QUEUED, 0)  # a 429 is not an attempt

    time.sleep(0.06)
    fake_lifevision.outage()
    for _ in range(3):
        with pytest.raises(RetryLater):
            sending.reply_send(reply_id=reply.pk)
    with pytest.raises(RetryLater):  # the circuit is open: held, not called
        sending.reply_send(reply_id=reply.pk)
    assert fake_lifevision.requests == 4
    fake_lifevision.recover()
    time.sleep(0.55)
    assert sending.reply_send(reply_id=reply.pk) == "sent"
    assert [m["to"] for m in fake_lifevision.messages] == ["+4741234567"]


@pytest.mark.django_db
def test_a_reply_fails_only_after_the_retry_window(make_contact, fake_lifevision, settings):
    settings.SEND_RETRY_WINDOW = 60
    reply = _reply(make_contact)
    fake_lifevision.outage()
    with pytest.raises(RetryLater):
        sending.reply_send(reply_id=reply.pk)
    Reply.objects.filter(pk=reply.pk).update(created_at=timezone.now() - dt.timedelta(seconds=61))
    assert sending.reply_send(reply_id=reply.pk) == "failed"
    reply.refresh_from_db()
    assert "503" in reply.last_error and reply.attempts == 2


def test_the_old_attempt_budget_setting_is_refused(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import comms.settings

    monkeypatch.setenv("COMMS_SEND_MAX_ATTEMPTS", "8")
    with pytest.raises(ImproperlyConfigured, match="COMMS_SEND_RETRY_WINDOW"):
        importlib.reload(comms.settings)
    monkeypatch.delenv("COMMS_SEND_MAX_ATTEMPTS")
    importlib.reload(comms.settings)


@pytest.mark.parametrize(
    ("value", "seconds"), [("6h", 21600.0), ("90", 90.0), ("1500ms", 1.5), ("15m", 900.0), ("2d", 172800.0)]
)
def test_durations_read_from_the_environment(monkeypatch, value, seconds):
    import importlib

    import comms.settings

    monkeypatch.setenv("COMMS_SEND_RETRY_WINDOW", value)
    try:
        assert seconds == importlib.reload(comms.settings).SEND_RETRY_WINDOW
    finally:
        monkeypatch.delenv("COMMS_SEND_RETRY_WINDOW")
        importlib.reload(comms.settings)
