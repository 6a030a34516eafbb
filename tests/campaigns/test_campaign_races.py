"""DESIGN §3 "Immediately", proven on real concurrency: real dramatiq worker threads send a
campaign while other threads withdraw, each on its own PostgreSQL connection.

No wall-clock timing is asserted. Waiting is bounded polling that fails loudly. A leak is
judged two ways: by the database (a message sent to a withdrawn person must have been decided
before the withdrawal was recorded) and without clocks (the message must already be at the
provider when the withdrawal's transaction has returned).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from dramatiq import Worker

from comms.campaigns import sending, services
from comms.campaigns.models import CampaignStatus, Delivery
from comms.campaigns.tasks import start_campaign
from comms.contacts.models import Contact
from comms.suppression.models import ConsentEvent
from tests.campaigns.campaign_helpers import (
    bulk_contacts,
    by_contact,
    grant,
    make_campaign,
    received_to,
    sms_stop,
    statuses,
    withdraw_all,
)

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="advisory locks and real concurrency need PostgreSQL",
    ),
]

BOUND = 30.0  # seconds: the most any wait may take before the test fails


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {BOUND:.0f} s waiting for {what}")
        time.sleep(0.005)


@pytest.fixture
def worker(broker: Any) -> Iterator[Worker]:
    """A real dramatiq worker with several threads, each with its own database connection."""
    running = Worker(broker, worker_timeout=20, worker_threads=4)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _drain_worker(broker: Any, worker: Worker) -> None:
    for _ in range(5):
        for queue in list(broker.queues):
            broker.join(queue, fail_fast=True, timeout=int(BOUND * 1000))
        worker.join()


def _granted(brand: Any, purpose: Any, n: int) -> list[Contact]:
    contacts = bulk_contacts(brand, n)
    with transaction.atomic():
        for contact in contacts:
            grant(contact, purpose)
    return contacts


@dataclass
class Withdrawal:
    contact: Contact
    event: ConsentEvent
    # Who LifeVision had a message for right after the withdrawal's transaction returned.
    at_provider_after: frozenset[str]


def test_no_message_reaches_a_person_after_their_withdrawal_commits(
    brand, purpose, fake_lifevision, broker, worker, settings, monkeypatch
):
    settings.SEND_BATCH_SIZE = 20
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    contacts = _granted(brand, purpose, 300)
    leaving = rng.sample(contacts, len(contacts) // 2)
    leaving_ids = {c.pk for c in leaving}

    real_send = sending._send

    def slow_send(provider: str, messages: Any) -> Any:
        # Between the gate's decision and the hand-off, holding the senders' shared locks: make
        # that window wide, so withdrawals really queue behind batches in flight (and a sender
        # that did not lock would be caught handing over after a withdrawal committed).
        time.sleep(random.uniform(0.1, 0.3))
        return real_send(provider, messages)

    monkeypatch.setattr(sending, "_send", slow_send)

    def withdraw(share: list[Contact]) -> list[Withdrawal]:
        done = []
        try:
            for contact in share:
                time.sleep(rng.uniform(0, 0.003))
                # Half say STOPP by SMS, half unsubscribe from everything.
                event = sms_stop(contact) if contact.pk % 2 else withdraw_all(contact)
                at_provider = frozenset(m["to"] for m in fake_lifevision.messages)
                done.append(Withdrawal(contact, event, at_provider))
        finally:
            connection.close()
        return done

    campaign = make_campaign(brand, purpose)
    services.campaign_send_now(campaign=campaign)
    _wait_until(lambda: fake_lifevision.requests > 0, "the first batch to reach LifeVision")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(withdraw, leaving[i::4]) for i in range(4)]
        withdrawals = [w for future in futures for w in future.result(timeout=BOUND)]
    _drain_worker(broker, worker)

    assert len(withdrawals) == len(leaving)
    received = received_to(fake_lifevision.messages)
    deliveries = by_contact(campaign)
    leaks, sent_before, denied_after = [], 0, 0
    for withdrawal in withdrawals:
        contact, event = withdrawal.contact, withdrawal.event
        delivery = deliveries[contact.pk]
        if delivery.status == "sent":
            sent_before += 1
            assert received[str(contact.mobile)] == 1
            assert delivery.decided_at is not None
            if not (
                delivery.decided_at < event.recorded_at and contact.mobile in withdrawal.at_provider_after
            ):
                leaks.append((contact.pk, delivery.decided_at, event.recorded_at))
        else:
            denied_after += 1
            assert received[str(contact.mobile)] == 0, (
                f"a message for {contact.pk} was never recorded as sent"
            )
            assert delivery.status == "denied"
            assert delivery.reason == ("suppressed:sms_stop" if contact.pk % 2 else "suppressed:withdrawn")
            assert delivery.decision_event_id == event.pk
            assert delivery.decided_at is not None and delivery.decided_at >= event.recorded_at
    assert leaks == [], f"messages sent after the withdrawal committed (seed {seed})"
    # The race really happened: some people were reached before they left, some were not.
    assert sent_before > 0 and denied_after > 0, (sent_before, denied_after, seed)

    stayed = [c for c in contacts if c.pk not in leaving_ids]
    assert all(received[str(c.mobile)] == 1 and deliveries[c.pk].status == "sent" for c in stayed)
    assert sum(received.values()) == len(stayed) + sent_before
    assert statuses(campaign) == {"sent": len(stayed) + sent_before, "denied": denied_after}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def _waiting_on_advisory_lock(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = %s", [pid]
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def test_a_withdrawal_waits_for_the_batch_in_flight_and_every_later_batch_sees_it(
    brand, purpose, fake_lifevision, broker, settings, monkeypatch
):
    leaving, staying = _granted(brand, purpose, 2)
    campaign = make_campaign(brand, purpose)
    services.campaign_send_now(campaign=campaign)
    start_campaign.fn(campaign.pk)  # the deliveries exist and are queued
    broker.flush_all()  # this test hands the batch to the sender itself
    ids = list(Delivery.objects.filter(campaign=campaign).values_list("id", flat=True))

    in_hand_off, release = threading.Event(), threading.Event()
    real_send = sending._send

    def held_send(provider: str, messages: Any) -> Any:
        in_hand_off.set()
        assert release.wait(BOUND), "never released"
        return real_send(provider, messages)

    monkeypatch.setattr(sending, "_send", held_send)
    withdrawer_pid: list[int] = []

    def send() -> Any:
        try:
            return sending.deliveries_send(delivery_ids=ids)
        finally:
            connection.close()

    def withdraw() -> ConsentEvent:
        try:
            withdrawer_pid.append(_backend_pid())
            return withdraw_all(leaving)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        sender = pool.submit(send)
        assert in_hand_off.wait(BOUND), "the batch never reached the hand-off"
        withdrawer = pool.submit(withdraw)
        _wait_until(
            lambda: bool(withdrawer_pid) and _waiting_on_advisory_lock(withdrawer_pid[0]),
            "the withdrawal to wait for the sender's lock",
        )
        assert not withdrawer.done()
        release.set()
        outcome = sender.result(timeout=BOUND)
        event = withdrawer.result(timeout=BOUND)

    # The batch decided before the withdrawal and went out; the withdrawal came after it.
    assert outcome.sent == 2
    delivery = by_contact(campaign)[leaving.pk]
    assert delivery.status == "sent" and delivery.decided_at is not None
    assert delivery.decided_at < event.recorded_at
    monkeypatch.setattr(sending, "_send", real_send)

    again = make_campaign(brand, purpose, name="Neste")
    services.campaign_send_now(campaign=again)
    start_campaign.fn(again.pk)
    sending.deliveries_send(
        delivery_ids=list(Delivery.objects.filter(campaign=again).values_list("id", flat=True))
    )
    later = by_contact(again)
    assert (later[leaving.pk].status, later[leaving.pk].reason) == ("denied", "suppressed:withdrawn")
    assert later[staying.pk].status == "sent"
    assert received_to(fake_lifevision.messages) == {leaving.mobile: 1, staying.mobile: 2}


def test_workers_racing_over_the_same_batch_hand_each_message_over_once(
    brand, purpose, fake_lifevision, broker, monkeypatch
):
    contacts = _granted(brand, purpose, 60)
    campaign = make_campaign(brand, purpose)
    services.campaign_send_now(campaign=campaign)
    start_campaign.fn(campaign.pk)
    broker.flush_all()
    ids = list(Delivery.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))

    handed_over: list[str] = []
    lock = threading.Lock()
    real_send = sending._send

    def counting_send(provider: str, messages: Any) -> Any:
        with lock:
            handed_over.extend(m.external_id for m in messages)
        return real_send(provider, messages)

    monkeypatch.setattr(sending, "_send", counting_send)
    start = threading.Barrier(6)

    def send(batch: list[int]) -> None:
        try:
            start.wait(BOUND)
            sending.deliveries_send(delivery_ids=batch)
        finally:
            connection.close()

    # A redelivered message, a sweep and a resume can all carry the same ids at once.
    batches = [ids, ids, ids[:30], ids[30:], ids[::2], ids[1::2]]
    with ThreadPoolExecutor(max_workers=6) as pool:
        for future in [pool.submit(send, batch) for batch in batches]:
            future.result(timeout=BOUND)

    assert sorted(Counter(handed_over).values()) == [1] * len(contacts)  # never handed over twice
    assert received_to(fake_lifevision.messages) == Counter(c.mobile for c in contacts)
    assert statuses(campaign) == {"sent": len(contacts)}
