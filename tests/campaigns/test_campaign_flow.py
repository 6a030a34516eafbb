"""The campaign send path end to end: schedule -> tick -> deliveries -> gate -> LifeVision (fake).

Most tests run in the test's own transaction and drive the actors synchronously (``Drain``):
the stub broker carries only ids, so running a message is calling its actor with them. The
scheduled-campaign test uses a real dramatiq worker on committed data. Concurrency lives in
test_campaign_races.py, the HTTP API in test_campaign_api.py.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
import pytest
from django.utils import timezone

from comms.campaigns import selectors, sending, services
from comms.campaigns.models import Campaign, CampaignStatus, Delivery
from comms.campaigns.sending import RetryLater, next_send_window
from comms.campaigns.tasks import send_deliveries
from comms.contacts.models import Centre, Contact
from comms.contacts.services import visit_record
from comms.errors import Conflict, InvalidInput
from comms.links import read_token
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent, Suppression
from comms.suppression.services import Principal
from tests.campaigns.campaign_helpers import (
    PERSON,
    STAFF,
    Drain,
    WorkerKilled,
    age_enqueued,
    by_contact,
    grant,
    make_campaign,
    received_to,
    sms_stop,
    statuses,
    withdraw_all,
)

OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture
def drain(broker: Any, django_capture_on_commit_callbacks: Any) -> Drain:
    return Drain(broker, django_capture_on_commit_callbacks)


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _consented(make_contact: Any, purpose: Any, n: int, channel: str = "sms", **fields: Any) -> list[Contact]:
    contacts = [make_contact(first_name=f"Person{i}", **fields) for i in range(n)]
    for contact in contacts:
        grant(contact, purpose, channel)
    return contacts


def _send_now(drain: Drain, campaign: Campaign, *, run: bool = True) -> None:
    """Send now and run the start actor (deliveries created and enqueued); with ``run``, also
    run every send batch."""
    drain.call(services.campaign_send_now, campaign=campaign)
    assert drain.step(queue_name="campaigns"), "campaign_send_now enqueued no start"
    if run:
        drain()


# --- 1. a scheduled campaign goes out at its time, to exactly the allowed audience ------------


@pytest.mark.django_db(transaction=True)
def test_a_scheduled_campaign_goes_out_at_its_time_to_exactly_the_allowed_audience(
    brand, other_brand, make_contact, make_purpose, purpose, fake_lifevision, broker, run_actors
):
    allowed = _consented(make_contact, purpose, 2)

    guardian = make_contact(first_name="Forelder")  # an adult without consent of their own
    twelve = dt.date(timezone.localdate().year - 12, 1, 1)
    ward = make_contact(first_name="Barn", guardian_id=guardian.pk, birth_date=twelve)
    ward_grant = grant(ward, purpose, principal=Principal(actor="guardian", guardian=guardian))
    allowed.append(ward)

    denied: list[tuple[Contact, str, int | None]] = []  # (contact, reason, decision event)

    withdrawn = make_contact()
    grant(withdrawn, purpose)
    event = ledger.consent_withdraw(
        contact=withdrawn, channel="sms", purpose=purpose, source="api", principal=PERSON
    )
    denied.append((withdrawn, "withdrawn", event.pk))
    denied.append((guardian, "no_consent", None))
    denied.append((make_contact(), "no_consent", None))

    objector = make_contact()
    grant(objector, purpose)
    event = ledger.objection_record(contact=objector, source="api", principal=PERSON)
    # The objection suppressed the old number; on a new number the objection itself still holds.
    Contact.objects.filter(pk=objector.pk).update(mobile="+4799988877")
    denied.append((objector, "objection", event.pk))

    stopped = make_contact()
    grant(stopped, purpose)
    denied.append((stopped, "suppressed:sms_stop", sms_stop(stopped).pk))

    unsubscribed = make_contact()
    grant(unsubscribed, purpose)
    denied.append((unsubscribed, "suppressed:withdrawn", withdraw_all(unsubscribed).pk))

    bounced = make_contact()
    grant(bounced, purpose)
    event, _ = ledger.suppression_add(
        channel="sms",
        address=bounced.mobile,
        reason="hard_bounce",
        source="lifevision_webhook",
        principal=STAFF,
    )
    denied.append((bounced, "suppressed:hard_bounce", event.pk))

    grown_up = make_contact()  # consent given when no birth date was known; now known to be 12
    minor_grant = grant(grown_up, purpose)
    Contact.objects.filter(pk=grown_up.pk).update(birth_date=twelve)
    denied.append((grown_up, "minor_without_guardian", minor_grant.pk))

    # Outside the audience: another brand, a guest, no mobile, erased.
    other_purpose = make_purpose(key="k24-news", brand=other_brand)
    grant(make_contact(brand=other_brand.key), other_purpose)
    grant(make_contact(kind="guest"), purpose)
    make_contact(mobile=None)
    erased = make_contact()
    grant(erased, purpose)
    Contact.objects.filter(pk=erased.pk).update(erased_at=timezone.now())

    campaign = make_campaign(brand, purpose, audience={"kinds": ["member"]})
    services.campaign_schedule(campaign=campaign, send_at=timezone.now() + dt.timedelta(minutes=5))

    assert services.campaigns_tick() == {"started": 0, "requeued": 0}
    run_actors()
    assert not Delivery.objects.filter(campaign=campaign).exists()
    assert fake_lifevision.requests == 0
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SCHEDULED

    Campaign.objects.filter(pk=campaign.pk).update(send_at=timezone.now() - dt.timedelta(seconds=1))
    assert services.campaigns_tick()["started"] == 1
    run_actors()

    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    deliveries = by_contact(campaign)
    assert set(deliveries) == {c.pk for c in allowed} | {c.pk for c, _, _ in denied}
    for contact in allowed:
        delivery = deliveries[contact.pk]
        assert (delivery.status, delivery.reason) == ("sent", "consent")
        assert delivery.provider_id and delivery.sent_at and delivery.decided_at
    assert deliveries[ward.pk].decision_event_id == ward_grant.pk
    for contact, reason, event_id in denied:
        delivery = deliveries[contact.pk]
        assert (delivery.status, delivery.reason) == ("denied", reason)
        assert delivery.decision_event_id == event_id, reason
        assert delivery.decided_at is not None and not delivery.provider_id
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert campaign.started_at is not None and campaign.finished_at is not None
    counts = selectors.campaign_counts(campaign=campaign)
    assert counts.by_status == {"sent": 3, "denied": len(denied)}
    assert counts.by_reason["denied"]["no_consent"] == 2


# --- 2. audience filters, set-based; preview writes nothing ----------------------------------


@pytest.fixture
def population(brand, make_contact, purpose) -> dict[str, Contact]:
    """Five SMS contacts of the brand with kinds, centres, tags, visits and ages to filter on,
    plus contacts no filter may ever select. ``day`` (30 days ago) is the visit boundary."""
    Centre.objects.create(brand=brand, key="bergen", name="Bergen")
    today = timezone.localdate()
    day = today - dt.timedelta(days=30)

    def at(date: dt.date, hour: int, minute: int) -> dt.datetime:
        return dt.datetime.combine(date, dt.time(hour, minute), tzinfo=OSLO)

    people = {
        # 30 today; last visit 00:30 on ``day`` (Oslo): on or after ``day``.
        "anna": make_contact(
            kind="member", home_centre="oslo", tags=["vip", "yoga"], birth_date=_years_before(today, 30)
        ),
        # 45; last visit 23:30 the evening before ``day`` (Oslo), which is 21:30/22:30 UTC.
        "bjorn": make_contact(
            kind="member", home_centre="bergen", tags=["yoga"], birth_date=dt.date(today.year - 45, 1, 1)
        ),
        # no birth date; a visit after ``day``; no email.
        "cato": make_contact(kind="guest", home_centre="oslo", email=None),
        # 29, turning 30 tomorrow; never visited.
        "dina": make_contact(
            kind="lead", tags=["vip"], birth_date=_years_before(today, 30) + dt.timedelta(days=1)
        ),
        # 70; an old visit and a recent one: the last visit is the recent one.
        "eirik": make_contact(kind="member", home_centre="bergen", birth_date=dt.date(today.year - 70, 1, 1)),
    }
    visits = {
        "anna": [at(day, 0, 30)],
        "bjorn": [at(day - dt.timedelta(days=100), 12, 0), at(day - dt.timedelta(days=1), 23, 30)],
        "cato": [at(day + dt.timedelta(days=5), 9, 0)],
        "eirik": [at(day - dt.timedelta(days=400), 9, 0), at(day + dt.timedelta(days=10), 18, 0)],
    }
    for name, times in visits.items():
        for when in times:
            visit_record(contact=people[name], kind="check_in", occurred_at=when)
    for name in ("anna", "bjorn", "dina", "eirik"):
        grant(people[name], purpose)
    ledger.consent_withdraw(
        contact=people["eirik"], channel="sms", purpose=purpose, source="api", principal=PERSON
    )
    # Never in any audience: no mobile (SMS), erased, another brand's.
    people["no_mobile"] = make_contact(kind="member", home_centre="oslo", tags=["vip"], mobile=None)
    gone = make_contact(kind="member", home_centre="oslo", tags=["vip"])
    Contact.objects.filter(pk=gone.pk).update(erased_at=timezone.now())
    return people


# What the gate says about each contact of the population for the SMS purpose.
POPULATION_REASONS = {
    "anna": None,
    "bjorn": None,
    "dina": None,
    "cato": "no_consent",
    "eirik": "withdrawn",
}
DAY = "{day}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ({}, {"anna", "bjorn", "cato", "dina", "eirik"}),
        ({"kinds": ["member"]}, {"anna", "bjorn", "eirik"}),
        ({"kinds": ["guest", "lead"]}, {"cato", "dina"}),
        ({"centres": ["oslo"]}, {"anna", "cato"}),
        ({"centres": ["oslo", "bergen"]}, {"anna", "bjorn", "cato", "eirik"}),
        ({"tags": ["vip"]}, {"anna", "dina"}),
        ({"tags": ["VIP", "yoga"]}, {"anna", "bjorn", "dina"}),
        ({"last_visit_before": DAY}, {"bjorn"}),
        ({"last_visit_after": DAY}, {"anna", "cato", "eirik"}),
        ({"last_visit_after": "{day-1}", "last_visit_before": "{day+1}"}, {"anna", "bjorn"}),
        ({"age_min": 30}, {"anna", "bjorn", "eirik"}),
        ({"age_max": 29}, {"dina"}),
        ({"age_min": 30, "age_max": 30}, {"anna"}),
        ({"age_max": 45}, {"anna", "bjorn", "dina"}),
        ({"kinds": ["member"], "centres": ["bergen"], "tags": ["yoga"], "age_min": 40}, {"bjorn"}),
        ({"tags": ["vip", "yoga"], "last_visit_after": DAY, "age_max": 69}, {"anna"}),
    ],
)
def test_audience_filters_select_exactly_the_matching_contacts(
    brand, purpose, population, drain, audience, expected
):
    day = timezone.localdate() - dt.timedelta(days=30)
    dates = {DAY: day, "{day-1}": day - dt.timedelta(days=1), "{day+1}": day + dt.timedelta(days=1)}
    audience = {k: dates[v].isoformat() if isinstance(v, str) else v for k, v in audience.items()}
    campaign = make_campaign(brand, purpose, audience=audience)

    before = (Delivery.objects.count(), ConsentEvent.objects.count(), Suppression.objects.count())
    preview = selectors.campaign_preview(campaign=campaign)
    assert (Delivery.objects.count(), ConsentEvent.objects.count(), Suppression.objects.count()) == before

    assert preview.audience == len(expected)
    assert preview.would_send == sum(1 for name in expected if POPULATION_REASONS[name] is None)
    assert preview.would_deny == dict(
        Counter(POPULATION_REASONS[name] for name in expected if POPULATION_REASONS[name])
    )

    _send_now(drain, campaign, run=False)
    selected = set(Delivery.objects.filter(campaign=campaign).values_list("contact_id", flat=True))
    assert selected == {population[name].pk for name in expected}


@pytest.mark.django_db
def test_an_email_audience_needs_an_email_address(brand, purpose, population, drain):
    campaign = make_campaign(brand, purpose, channel="email")
    assert selectors.campaign_preview(campaign=campaign).audience == 5  # no cato; no_mobile is in
    _send_now(drain, campaign, run=False)
    selected = set(Delivery.objects.filter(campaign=campaign).values_list("contact_id", flat=True))
    assert selected == {population[n].pk for n in ("anna", "bjorn", "dina", "eirik", "no_mobile")}


@pytest.mark.django_db
def test_preview_counts_would_be_denials_by_reason_and_writes_nothing(
    brand, purpose, make_contact, fake_lifevision
):
    _consented(make_contact, purpose, 3)
    for _ in range(2):
        make_contact()
    stopped = make_contact()
    grant(stopped, purpose)
    sms_stop(stopped)
    campaign = make_campaign(brand, purpose)
    state = (
        Delivery.objects.count(),
        ConsentEvent.objects.count(),
        Suppression.objects.count(),
        Campaign.objects.values_list("status", "updated_at").get(pk=campaign.pk),
    )

    preview = selectors.campaign_preview(campaign=campaign)

    assert (preview.audience, preview.would_send) == (6, 3)
    assert preview.would_deny == {"no_consent": 2, "suppressed:sms_stop": 1}
    assert state == (
        Delivery.objects.count(),
        ConsentEvent.objects.count(),
        Suppression.objects.count(),
        Campaign.objects.values_list("status", "updated_at").get(pk=campaign.pk),
    )
    assert fake_lifevision.requests == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("audience", "field"),
    [
        ({"kind": ["member"]}, "audience.kind"),
        ({"kinds": ["vip"]}, "audience.kinds"),
        ({"kinds": "member"}, "audience.kinds"),
        ({"centres": ["tromso"]}, "audience.centres"),
        ({"tags": ["nope"]}, "audience.tags"),
        ({"last_visit_before": "yesterday"}, "audience.last_visit_before"),
        ({"age_min": -1}, "audience.age_min"),
        ({"age_max": True}, "audience.age_max"),
        ({"age_min": 40, "age_max": 30}, "audience.age_max"),
    ],
)
def test_a_bad_audience_filter_is_refused_naming_the_field(brand, purpose, audience, field):
    with pytest.raises(InvalidInput) as error:
        make_campaign(brand, purpose, audience=audience)
    assert error.value.field == field


# --- 4. a worker killed mid-campaign, or a lost broker message: nothing twice, nothing lost --


@pytest.mark.django_db
def test_a_worker_killed_between_hand_off_and_commit_resends_nothing_twice(
    brand, purpose, make_contact, fake_lifevision, drain, settings, monkeypatch
):
    settings.SEND_BATCH_SIZE = 4
    settings.SEND_SWEEP_AFTER_SECONDS = 60
    settings.LIFEVISION_SMS_SENDER = None  # the brand's alphanumeric sender: SMS carry a short link
    allowed = _consented(make_contact, purpose, 10)
    make_contact()  # no consent: in the last batch
    real_send = sending._send
    kills = {"left": 2}

    def send_then_die(provider: str, messages: Any) -> Any:
        results = real_send(provider, messages)  # LifeVision has them now
        if kills["left"]:
            kills["left"] -= 1
            raise WorkerKilled  # ... and the worker dies before the transaction commits
        return results

    monkeypatch.setattr(sending, "_send", send_then_die)
    campaign = make_campaign(brand, purpose)
    drain.call(services.campaign_send_now, campaign=campaign)
    drain(swallow=(WorkerKilled,))

    assert len(drain.dead) == 2
    assert len(fake_lifevision.messages) == 10  # every message reached LifeVision ...
    assert statuses(campaign) == {"queued": 8, "sent": 2, "denied": 1}  # ... 8 are not recorded
    assert fake_lifevision.requests == 3

    # Just handed to the broker: the sweep leaves them to their (possibly slow) worker.
    assert drain.call(services.campaigns_tick) == {"started": 0, "requeued": 0}
    age_enqueued(campaign, seconds=120)
    assert drain.call(services.campaigns_tick) == {"started": 0, "requeued": 8}
    drain()

    assert fake_lifevision.requests == 5  # the two dead batches were handed over again ...
    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)  # ... once each
    assert statuses(campaign) == {"sent": 10, "denied": 1}
    received = {m["external_id"]: m for m in fake_lifevision.messages}
    for delivery in Delivery.objects.filter(campaign=campaign, status="sent"):
        message = received[str(delivery.external_id)]
        assert delivery.provider_id == message["provider_id"]
        # The opt-out link the person actually got (in the first hand-off) must be this delivery's.
        assert delivery.short_code and message["text"].endswith(f"/s/{delivery.short_code}")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


@pytest.mark.django_db
def test_lost_batch_messages_are_picked_up_by_the_sweep(
    brand, purpose, make_contact, fake_lifevision, drain, broker, settings
):
    settings.SEND_BATCH_SIZE = 3
    settings.SEND_SWEEP_AFTER_SECONDS = 60
    allowed = _consented(make_contact, purpose, 7)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign, run=False)
    broker.flush("send")  # Redis lost them
    assert statuses(campaign) == {"queued": 7}

    assert drain.call(services.campaigns_tick)["requeued"] == 0
    age_enqueued(campaign)
    assert drain.call(services.campaigns_tick)["requeued"] == 7
    assert drain() == 3

    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    assert statuses(campaign) == {"sent": 7}
    assert drain.call(services.campaigns_tick)["requeued"] == 0


@pytest.mark.django_db
def test_a_batch_delivered_twice_by_the_broker_is_sent_once(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.SEND_BATCH_SIZE = 3
    settings.SEND_SWEEP_AFTER_SECONDS = 60
    allowed = _consented(make_contact, purpose, 6)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign, run=False)
    age_enqueued(campaign)  # slow, not lost: the sweep enqueues the same ids a second time
    assert drain.call(services.campaigns_tick)["requeued"] == 6
    assert drain() == 4

    assert fake_lifevision.requests == 2  # the second copy of each batch found nothing to send
    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    assert statuses(campaign) == {"sent": 6}


# --- 5. provider storms: 5xx, 429, permanent 401 ---------------------------------------------


def _queued_ids(campaign: Campaign) -> list[int]:
    return list(
        Delivery.objects.filter(campaign=campaign, status="queued")
        .order_by("id")
        .values_list("id", flat=True)
    )


def _send_until_settled(ids: list[int], bound: int = 40) -> list[RetryLater]:
    """Call the batch sender as the actor's retries would, waiting each (short) delay."""
    errors: list[RetryLater] = []
    for _ in range(bound):
        try:
            sending.deliveries_send(delivery_ids=ids)
        except RetryLater as exc:
            errors.append(exc)
            assert exc.delay_ms <= 1000, "tests keep their delays short"
            time.sleep(exc.delay_ms / 1000)
        else:
            return errors
    raise AssertionError(f"the batch was still retrying after {bound} attempts")


@pytest.mark.django_db
def test_a_5xx_storm_is_retried_with_growing_jittered_backoff_and_sends_every_message_once(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.SEND_BACKOFF_MIN, settings.SEND_BACKOFF_MAX = 0.02, 0.08
    allowed = _consented(make_contact, purpose, 5)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign, run=False)
    fake_lifevision.fail_next(3, status=503)

    errors = _send_until_settled(_queued_ids(campaign))

    # 0.02, 0.04, 0.08 s, each jittered down to no less than half of it
    delays = [e.delay_ms / 1000 for e in errors]
    assert [lo / 2 <= d <= lo for d, lo in zip(delays, [0.02, 0.04, 0.08], strict=True)] == [True] * 3
    assert fake_lifevision.requests == 4
    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    sent = Delivery.objects.filter(campaign=campaign)
    assert {(d.status, d.attempts) for d in sent} == {("sent", 4)}
    assert all(d.failing_since is not None for d in sent)
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


@pytest.mark.django_db
def test_a_429_storm_honours_retry_after_and_uses_up_nothing(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    allowed = _consented(make_contact, purpose, 5)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign, run=False)
    fake_lifevision.fail_next(3, status=429, retry_after=0.05)

    errors = _send_until_settled(_queued_ids(campaign))

    assert len(errors) >= 3 and all(e.delay_ms >= 50 for e in errors)
    assert fake_lifevision.requests == 4  # the pause held every other try back before the call
    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    sent = Delivery.objects.filter(campaign=campaign)
    assert {(d.status, d.attempts, d.failing_since) for d in sent} == {("sent", 1, None)}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


@pytest.mark.django_db
def test_the_send_actor_asks_dramatiq_to_retry_after_the_providers_retry_after(
    brand, purpose, make_contact, fake_lifevision, drain
):
    _consented(make_contact, purpose, 2)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign, run=False)
    fake_lifevision.fail_next(1, status=429, retry_after=12)
    with pytest.raises(dramatiq.Retry) as retry:
        send_deliveries.fn(_queued_ids(campaign))
    assert retry.value.delay is not None and 12_000 <= retry.value.delay <= 24_000
    assert statuses(campaign) == {"queued": 2}
    # Every sender of the provider now waits out the pause, before the gate and the call.
    with pytest.raises(dramatiq.Retry) as held:
        send_deliveries.fn(_queued_ids(campaign))
    assert held.value.delay is not None and held.value.delay >= 11_000
    assert fake_lifevision.requests == 1


@pytest.mark.django_db
def test_a_storm_over_many_batches_through_the_actor_loses_and_duplicates_nothing(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.SEND_BATCH_SIZE = 4
    allowed = _consented(make_contact, purpose, 12)
    campaign = make_campaign(brand, purpose)
    fake_lifevision.fail_next(4, status=502)
    _send_now(drain, campaign)

    assert drain.retried == 4 and not drain.dead
    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    assert statuses(campaign) == {"sent": 12}


@pytest.mark.django_db
def test_failures_past_the_retry_window_are_recorded_as_failed_never_lost(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.SEND_RETRY_WINDOW = 3600
    _consented(make_contact, purpose, 4)
    make_contact()  # denied: a provider outage does not touch the gate's decisions
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign, run=False)
    fake_lifevision.fail_next(50, status=503)
    ids = _queued_ids(campaign)

    with pytest.raises(RetryLater):
        sending.deliveries_send(delivery_ids=ids)
    # An hour of failures later (the clock runs from the first failure)...
    Delivery.objects.filter(campaign=campaign, failing_since__isnull=False).update(
        failing_since=timezone.now() - dt.timedelta(seconds=3601)
    )
    # ...the next failure settles them; a prompt retry records the gate's denial that rolled
    # back with the batch.
    assert len(_send_until_settled(ids)) == 1

    assert fake_lifevision.requests == 2 and fake_lifevision.messages == []
    deliveries = list(Delivery.objects.filter(campaign=campaign).exclude(status="denied"))
    assert {(d.status, d.reason, d.attempts) for d in deliveries} == {("failed", "provider_unavailable", 2)}
    assert all("503" in d.last_error for d in deliveries)
    assert statuses(campaign) == {"failed": 4, "denied": 1}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.FAILED
    assert campaign.status_detail == "no message reached the provider; 4 failed (provider_unavailable: 4)"


@pytest.mark.django_db
def test_a_retry_after_an_outage_asks_the_gate_again(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    stays, leaves = _consented(make_contact, purpose, 2)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign, run=False)
    ids = _queued_ids(campaign)
    fake_lifevision.fail_next(1, status=503)
    with pytest.raises(RetryLater):
        sending.deliveries_send(delivery_ids=ids)
    event = withdraw_all(leaves)

    sending.deliveries_send(delivery_ids=ids)

    assert received_to(fake_lifevision.messages) == {stays.mobile: 1}
    delivery = by_contact(campaign)[leaves.pk]
    assert (delivery.status, delivery.reason, delivery.decision_event_id) == (
        "denied",
        "suppressed:withdrawn",
        event.pk,
    )


@pytest.mark.django_db
def test_a_wrong_api_key_fails_the_batch_for_good_with_the_error(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.LIFEVISION_API_KEY = "not-the-key"
    _consented(make_contact, purpose, 3)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign)

    assert not drain.retried and fake_lifevision.requests == 1
    assert fake_lifevision.messages == []
    deliveries = list(Delivery.objects.filter(campaign=campaign))
    assert {(d.status, d.attempts) for d in deliveries} == {("failed", 1)}
    assert all("401" in d.last_error and "not-the-key" not in d.last_error for d in deliveries)


@pytest.mark.django_db
def test_rejected_and_blocked_recipients_are_failed_and_a_block_suppresses_the_number(
    brand, purpose, make_contact, fake_lifevision, drain
):
    ok, blocked = _consented(make_contact, purpose, 2)
    fake_lifevision.block(blocked.mobile)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign)

    deliveries = by_contact(campaign)
    assert deliveries[ok.pk].status == "sent"
    assert (deliveries[blocked.pk].status, deliveries[blocked.pk].last_error) == (
        "failed",
        "rejected: blocked_recipient",
    )
    again = make_campaign(brand, purpose, name="Igjen")
    _send_now(drain, again)
    assert by_contact(again)[blocked.pk].reason == "suppressed:blocked_recipient"
    assert received_to(fake_lifevision.messages) == {ok.mobile: 2, blocked.mobile: 1}


# --- 6. quiet hours and the frequency cap defer ----------------------------------------------


def _oslo(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=OSLO)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (_oslo(2026, 3, 10, 7, 59), _oslo(2026, 3, 10, 8, 0)),  # before: opens today
        (_oslo(2026, 3, 10, 0, 0), _oslo(2026, 3, 10, 8, 0)),
        (_oslo(2026, 3, 10, 8, 0), None),  # inside (the opening minute included)
        (_oslo(2026, 3, 10, 20, 59, 59), None),
        (_oslo(2026, 3, 10, 21, 0), _oslo(2026, 3, 11, 8, 0)),  # after: opens tomorrow
        (_oslo(2026, 3, 10, 23, 30), _oslo(2026, 3, 11, 8, 0)),
        (_oslo(2026, 12, 31, 22, 0), _oslo(2027, 1, 1, 8, 0)),
        # Local time, whatever zone ``now`` is given in: 05:30 UTC is 07:30 in Oslo in summer.
        (dt.datetime(2026, 6, 15, 5, 30, tzinfo=dt.UTC), dt.datetime(2026, 6, 15, 6, 0, tzinfo=dt.UTC)),
        (dt.datetime(2026, 6, 15, 6, 30, tzinfo=dt.UTC), None),
        (dt.datetime(2026, 6, 15, 19, 30, tzinfo=dt.UTC), dt.datetime(2026, 6, 16, 6, 0, tzinfo=dt.UTC)),
        # The night summer time starts: 08:00 the next morning is 06:00 UTC, not 07:00.
        (_oslo(2026, 3, 28, 22, 0), dt.datetime(2026, 3, 29, 6, 0, tzinfo=dt.UTC)),
        (_oslo(2026, 10, 24, 22, 0), dt.datetime(2026, 10, 25, 7, 0, tzinfo=dt.UTC)),
    ],
)
def test_next_send_window(settings, now, expected):
    settings.SMS_SEND_WINDOW = ((8, 0), (21, 0))
    assert next_send_window(now) == expected


def test_no_send_window_is_always_open(settings):
    settings.SMS_SEND_WINDOW = None
    assert next_send_window(_oslo(2026, 3, 10, 3, 0)) is None


def _closed_window() -> tuple[tuple[tuple[int, int], tuple[int, int]], dt.datetime]:
    """A one-hour window that does not contain now, and when it next opens."""
    local = timezone.now().astimezone(OSLO)
    if local.hour >= 2:  # the window 00:00-01:00 is over for today
        return ((0, 0), (1, 0)), dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), OSLO)
    return ((22, 0), (23, 0)), dt.datetime.combine(local.date(), dt.time(22, 0), OSLO)


@pytest.mark.django_db
def test_quiet_hours_defer_sms_until_the_window_opens_then_the_tick_sends_them(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.SMS_SEND_WINDOW, opens = _closed_window()
    allowed = _consented(make_contact, purpose, 3)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign)

    assert fake_lifevision.requests == 0
    deferred = list(Delivery.objects.filter(campaign=campaign))
    assert {(d.status, d.reason, d.deferred_until) for d in deferred} == {("deferred", "quiet_hours", opens)}
    assert drain.call(services.campaigns_tick)["requeued"] == 0  # not due yet
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING

    # The morning comes: the window is open and the deferral is due.
    settings.SMS_SEND_WINDOW = None
    Delivery.objects.filter(campaign=campaign).update(deferred_until=timezone.now() - dt.timedelta(minutes=1))
    age_enqueued(campaign, seconds=8 * 3600)
    assert drain.call(services.campaigns_tick)["requeued"] == 3
    drain()

    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    assert statuses(campaign) == {"sent": 3}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


@pytest.mark.django_db
def test_email_is_not_held_back_by_the_sms_quiet_hours(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.SMS_SEND_WINDOW, _ = _closed_window()
    allowed = _consented(make_contact, purpose, 2, channel="email")
    campaign = make_campaign(brand, purpose, channel="email")
    _send_now(drain, campaign)
    assert received_to(fake_lifevision.messages) == Counter(c.email for c in allowed)
    assert statuses(campaign) == {"sent": 2}


@pytest.mark.django_db
def test_a_deferred_delivery_that_meets_an_outage_still_ends_failed_not_stuck(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.SMS_SEND_WINDOW, _ = _closed_window()
    settings.SEND_RETRY_WINDOW = 0.3
    _consented(make_contact, purpose, 2)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign)
    assert statuses(campaign) == {"deferred": 2}
    settings.SMS_SEND_WINDOW = None
    Delivery.objects.filter(campaign=campaign).update(deferred_until=timezone.now() - dt.timedelta(minutes=1))
    fake_lifevision.fail_next(50, status=503)

    _send_until_settled(list(Delivery.objects.filter(campaign=campaign).values_list("id", flat=True)))

    assert {(d.status, d.reason) for d in Delivery.objects.filter(campaign=campaign)} == {
        ("failed", "provider_unavailable")
    }


@pytest.mark.django_db
def test_the_frequency_cap_defers_a_second_campaign_within_the_window(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.FREQUENCY_CAP = {"sms": (1, 7), "email": (7, 7)}
    first_audience = _consented(make_contact, purpose, 2, tags=["first"])
    newcomer = _consented(make_contact, purpose, 1)[0]
    first = make_campaign(brand, purpose, audience={"tags": ["first"]}, name="Første")
    _send_now(drain, first)
    sent_at = {d.contact_id: d.sent_at for d in Delivery.objects.filter(campaign=first) if d.sent_at}

    second = make_campaign(brand, purpose, name="Andre")
    _send_now(drain, second)

    deliveries = by_contact(second)
    for contact in first_audience:
        delivery = deliveries[contact.pk]
        assert (delivery.status, delivery.reason) == ("deferred", "frequency_cap")
        assert delivery.deferred_until == sent_at[contact.pk] + dt.timedelta(days=7)
    assert deliveries[newcomer.pk].status == "sent"
    assert received_to(fake_lifevision.messages) == Counter(
        [c.mobile for c in first_audience] + [newcomer.mobile]
    )
    # Email has its own cap: the same people may still get an email campaign.
    for contact in first_audience:
        grant(contact, purpose, "email")
    mail = make_campaign(brand, purpose, channel="email", audience={"tags": ["first"]}, name="E-post")
    _send_now(drain, mail)
    assert statuses(mail) == {"sent": 2}


# --- 7. pause, resume, cancel ----------------------------------------------------------------


@pytest.mark.django_db
def test_pause_stops_further_sends_and_resume_sends_only_what_was_not_sent(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.SEND_BATCH_SIZE = 2
    allowed = _consented(make_contact, purpose, 8)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign, run=False)
    assert drain.step(queue_name="send")  # one batch goes out ...
    drain.call(services.campaign_pause, campaign=campaign)  # ... then the marketer pauses
    drain()  # the batches already in the broker find the campaign paused

    assert len(fake_lifevision.messages) == 2
    assert statuses(campaign) == {"sent": 2, "queued": 6}
    age_enqueued(campaign)
    assert drain.call(services.campaigns_tick) == {"started": 0, "requeued": 0}  # paused: no sweep
    assert drain() == 0
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED

    drain.call(services.campaign_resume, campaign=campaign)
    drain()

    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)
    assert fake_lifevision.requests == 4
    assert statuses(campaign) == {"sent": 8}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


@pytest.mark.django_db
def test_a_campaign_paused_before_its_time_resumes_as_scheduled(
    brand, purpose, make_contact, fake_lifevision, drain
):
    _consented(make_contact, purpose, 2)
    campaign = make_campaign(brand, purpose)
    services.campaign_schedule(campaign=campaign, send_at=timezone.now() + dt.timedelta(hours=1))
    services.campaign_pause(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(send_at=timezone.now() - dt.timedelta(minutes=1))
    assert drain.call(services.campaigns_tick)["started"] == 0  # paused: not started at its time

    drain.call(services.campaign_resume, campaign=campaign)
    drain()

    assert statuses(campaign) == {"sent": 2}


@pytest.mark.django_db
def test_cancel_marks_what_is_queued_cancelled_and_sends_nothing_more(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.SEND_BATCH_SIZE = 2
    _consented(make_contact, purpose, 6)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign, run=False)
    assert drain.step(queue_name="send")
    drain.call(services.campaign_cancel, campaign=campaign)
    drain()
    age_enqueued(campaign)
    drain.call(services.campaigns_tick)
    drain()

    assert len(fake_lifevision.messages) == 2
    assert statuses(campaign) == {"sent": 2, "cancelled": 4}
    reasons = set(
        Delivery.objects.filter(campaign=campaign, status="cancelled").values_list("reason", flat=True)
    )
    assert reasons == {"campaign_cancelled"}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CANCELLED and campaign.finished_at is not None
    with pytest.raises(Conflict):
        services.campaign_resume(campaign=campaign)


@pytest.mark.django_db
def test_invalid_transitions_are_conflicts(brand, purpose, make_contact, fake_lifevision, drain):
    _consented(make_contact, purpose, 1)
    draft = make_campaign(brand, purpose)
    for transition in (services.campaign_pause, services.campaign_resume):
        with pytest.raises(Conflict):
            transition(campaign=draft)

    _send_now(drain, draft)
    draft.refresh_from_db()
    assert draft.status == CampaignStatus.SENT
    for transition in (
        services.campaign_pause,
        services.campaign_resume,
        services.campaign_cancel,
        services.campaign_send_now,
        services.campaign_schedule,
    ):
        with pytest.raises(Conflict):
            transition(campaign=draft)
    with pytest.raises(Conflict):
        services.campaign_update(campaign=draft, data=services.CampaignInput(text="Ny tekst"))

    cancelled = make_campaign(brand, purpose)
    services.campaign_cancel(campaign=cancelled)
    for transition in (services.campaign_cancel, services.campaign_send_now, services.campaign_pause):
        with pytest.raises(Conflict):
            transition(campaign=cancelled)


# --- 8. content: opt-outs, unsubscribe headers, tokens, placeholders -------------------------


@pytest.mark.django_db
def test_an_sms_from_a_number_says_stopp_to_that_number(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.LIFEVISION_SMS_SENDER = "22220"
    kari = make_contact(first_name="Kari")
    grant(kari, purpose)
    campaign = make_campaign(brand, purpose, text="Hei {first_name}, velkommen til {brand}!")
    _send_now(drain, campaign)

    [message] = fake_lifevision.messages
    assert message["sender"] == "22220"
    assert message["text"] == "Hei Kari, velkommen til FIT24!\nSvar STOPP til 22220 for å melde deg av."
    delivery = Delivery.objects.get(campaign=campaign)
    assert delivery.short_code is None and delivery.segments == 1


@pytest.mark.django_db
def test_an_sms_from_a_name_carries_a_short_opt_out_link(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.LIFEVISION_SMS_SENDER = None
    settings.PUBLIC_BASE_URL = "https://comms.example"
    kari = make_contact(first_name="Kari")
    grant(kari, purpose)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign)

    [message] = fake_lifevision.messages
    delivery = Delivery.objects.get(campaign=campaign)
    assert message["sender"] == "FIT24"
    assert re.fullmatch(
        r"Hei Kari! 20% i dag\.\nAvmeld: https://comms\.example/s/[A-Za-z0-9]{10}", message["text"]
    )
    assert message["text"].endswith(f"/s/{delivery.short_code}")


@pytest.mark.django_db
def test_an_email_carries_one_click_unsubscribe_headers_and_a_visible_link(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.PUBLIC_BASE_URL = "https://comms.example"
    kari = make_contact(first_name="Kari")
    grant(kari, purpose, "email")
    campaign = make_campaign(
        brand,
        purpose,
        channel="email",
        subject="Til {first_name}",
        text="Hei {first_name}!",
        html="<p>Hei {first_name}!</p>",
    )
    _send_now(drain, campaign)

    [message] = fake_lifevision.messages
    assert (message["to"], message["subject"]) == (kari.email, "Til Kari")
    headers = message["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = re.fullmatch(r"<(https://comms\.example/u/(\S+))>", headers["List-Unsubscribe"])
    assert match, headers["List-Unsubscribe"]
    url, token = match.groups()
    assert message["text"].startswith("Hei Kari!") and url in message["text"]
    assert message["html"].startswith("<p>Hei Kari!</p>") and f'href="{url}"' in message["html"]
    decoded = read_token(token)
    delivery = Delivery.objects.get(campaign=campaign)
    assert (decoded.contact_id, decoded.purpose_id, decoded.channel) == (kari.pk, purpose.pk, "email")
    assert delivery.address_key.startswith(decoded.address_key_prefix)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"text": "Hei {fornavn}!"}, "text"),
        ({"channel": "email", "subject": "Hei {navn}", "text": "Hei"}, "subject"),
        ({"channel": "email", "subject": "Hei", "text": "Hei", "html": "<p>{x}</p>"}, "html"),
    ],
)
def test_an_unknown_placeholder_is_refused_naming_the_field(brand, purpose, fields, field):
    with pytest.raises(InvalidInput) as error:
        make_campaign(brand, purpose, **fields)
    assert error.value.field == field


@pytest.mark.django_db
def test_an_edit_cannot_sneak_in_an_unknown_placeholder(brand, purpose):
    campaign = make_campaign(brand, purpose)
    with pytest.raises(InvalidInput) as error:
        services.campaign_update(campaign=campaign, data=services.CampaignInput(text="Hei {fornavn}"))
    assert error.value.field == "text"
    campaign.refresh_from_db()
    assert campaign.text == "Hei {first_name}! 20% i dag."


@pytest.mark.django_db
def test_a_campaign_paused_while_its_last_batch_is_in_flight_finishes_after_resume(
    brand, purpose, make_contact, fake_lifevision, drain, monkeypatch
):
    allowed = _consented(make_contact, purpose, 2)
    campaign = make_campaign(brand, purpose)
    _send_now(drain, campaign, run=False)
    real_send = sending._send

    def send_while_the_marketer_pauses(provider: str, messages: Any) -> Any:
        services.campaign_pause(campaign=campaign)  # commits while the batch is being handed over
        return real_send(provider, messages)

    monkeypatch.setattr(sending, "_send", send_while_the_marketer_pauses)
    drain()
    monkeypatch.setattr(sending, "_send", real_send)
    assert statuses(campaign) == {"sent": 2}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.PAUSED

    drain.call(services.campaign_resume, campaign=campaign)  # nothing left to send
    drain()
    drain.call(services.campaigns_tick)
    drain()

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT and campaign.finished_at is not None
    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in allowed)


@pytest.mark.django_db
def test_a_campaign_whose_audience_is_empty_does_not_stay_sending(brand, purpose, make_contact, drain):
    make_contact(kind="guest")
    campaign = make_campaign(brand, purpose, audience={"kinds": ["lead"]})
    _send_now(drain, campaign)
    drain.call(services.campaigns_tick)
    drain()

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    assert not Delivery.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db
def test_the_sent_sms_never_exceeds_the_marketers_segment_limit(
    brand, purpose, make_contact, fake_lifevision, drain, settings
):
    settings.LIFEVISION_SMS_SENDER = None
    settings.PUBLIC_BASE_URL = "https://kommunikasjon.treningssenteret.example"
    grant(make_contact(first_name="Kari"), purpose)
    # The longest text the check lets through as one segment ...
    text = "x" * 160
    while True:
        try:
            campaign = services.campaign_create(
                brand=brand,
                data=services.CampaignInput(
                    name="Kort", channel="sms", purpose=purpose.key, text=text, sms_max_segments=1
                ),
            )
        except InvalidInput:
            text = text[:-1]
        else:
            break
    # ... must still be one segment with the opt-out link this server really sends.
    _send_now(drain, campaign)

    [message] = fake_lifevision.messages
    assert Delivery.objects.get(campaign=campaign).segments == 1, message["text"]
