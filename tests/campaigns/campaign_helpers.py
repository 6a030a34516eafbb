"""Helpers for the campaign send-path tests (test_campaign_flow, _races, _api).

``Drain`` runs what the actors enqueued on the stub broker synchronously, in the test's own
thread and transaction, so most tests can use the cheap ``db`` fixture: ``on_commit`` callbacks
are captured and executed, an actor's ``dramatiq.Retry`` puts its message back at once (no
backoff to wait for), and a chosen exception type can stand in for a worker that died.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from queue import Empty
from typing import Any

import dramatiq
from django.utils import timezone
from dramatiq.brokers.stub import StubBroker

from comms.campaigns import services
from comms.campaigns.models import Campaign, Delivery
from comms.campaigns.services import CampaignInput
from comms.contacts.models import Brand, Contact
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent, Purpose
from comms.suppression.services import Principal

STAFF = Principal(actor="staff", recorded_by="test")
PERSON = Principal(actor="self", recorded_by="test")
MAX_STEPS = 5000  # a drain that runs more actor messages than this is looping: fail loudly

Capture = Callable[..., AbstractContextManager[Any]]


class WorkerKilled(BaseException):
    """Stands in for a worker process dying (SIGKILL, OOM): nothing after it runs, nothing
    catches it on the way out, the open transaction rolls back."""


def grant(
    contact: Contact, purpose: Purpose, channel: str = "sms", principal: Principal = STAFF
) -> ConsentEvent:
    return ledger.consent_grant(
        contact=contact,
        channel=channel,
        purpose=purpose,
        basis="consent",
        source="front_desk",
        principal=principal,
    )


def withdraw_all(contact: Contact) -> ConsentEvent:
    """The person withdraws every purpose on every channel (the preference centre's "nothing")."""
    return ledger.consent_withdraw(
        contact=contact, channel=None, purpose=None, source="preference_centre", principal=PERSON
    )


def sms_stop(contact: Contact) -> ConsentEvent:
    """What a STOPP reply records: an SMS withdrawal of every purpose, suppressed as sms_stop."""
    return ledger.consent_withdraw(
        contact=contact,
        channel="sms",
        purpose=None,
        source="sms_keyword",
        principal=PERSON,
        suppression_reason="sms_stop",
    )


def make_campaign(
    brand: Brand,
    purpose: Purpose,
    *,
    channel: str = "sms",
    text: str = "Hei {first_name}! 20% i dag.",
    audience: dict[str, Any] | None = None,
    subject: str | None = None,
    html: str | None = None,
    name: str = "Tilbud",
) -> Campaign:
    if channel == "email" and subject is None:
        subject = "Nyheter for {first_name}"
    return services.campaign_create(
        brand=brand,
        data=CampaignInput(
            name=name,
            channel=channel,
            purpose=purpose.key,
            text=text,
            audience=audience,
            subject=subject,
            html=html,
        ),
    )


def bulk_contacts(brand: Brand, n: int, *, tag: str = "bulk") -> list[Contact]:
    """``n`` SMS+email contacts at once (bulk insert; the addresses are already normalised)."""
    stamp = uuid.uuid4().hex[:6]
    base = int(uuid.uuid4().int % 900_000)
    rows = [
        Contact(
            brand=brand,
            kind="member",
            first_name=f"{tag}{i}",
            email=f"{tag}-{stamp}-{i}@example.no",
            mobile=f"+479{(base + i) % 10_000_000:07d}",
        )
        for i in range(n)
    ]
    return Contact.objects.bulk_create(rows)


def by_contact(campaign: Campaign) -> dict[int, Delivery]:
    return {d.contact_id: d for d in Delivery.objects.filter(campaign=campaign)}


def statuses(campaign: Campaign) -> Counter[str]:
    return Counter(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))


def received_to(messages: Iterable[dict[str, Any]]) -> Counter[str]:
    """How many distinct messages (the fake deduplicates by external_id) went to each address."""
    return Counter(m["to"] for m in messages)


def age_enqueued(campaign: Campaign, seconds: int = 3600) -> None:
    """Pretend every delivery was handed to the broker ``seconds`` ago (a lost or dead batch)."""
    Delivery.objects.filter(campaign=campaign, enqueued_at__isnull=False).update(
        enqueued_at=timezone.now() - dt.timedelta(seconds=seconds)
    )


class Drain:
    """Run the stub broker's messages in this thread until none are left."""

    def __init__(self, broker: StubBroker, capture: Capture) -> None:
        self.broker = broker
        self.capture = capture
        self.ran: Counter[str] = Counter()
        self.retried = 0
        self.dead: list[dramatiq.Message[Any]] = []

    def call(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call a service and run its on-commit callbacks (which hand ids to the broker)."""
        with self.capture(execute=True):
            return function(*args, **kwargs)

    def pending(self) -> int:
        return sum(q.qsize() for q in self.broker.queues.values())

    def step(self, *, swallow: tuple[type[BaseException], ...] = (), queue_name: str | None = None) -> bool:
        """Run one message (from ``queue_name``, if given); False when there was none."""
        for name in [queue_name] if queue_name else list(self.broker.queues):
            queue = self.broker.queues[name]
            try:
                data = queue.get_nowait()
            except Empty:
                continue
            queue.task_done()
            self._run(dramatiq.Message.decode(data), queue, swallow)
            return True
        return False

    def _run(
        self,
        message: dramatiq.Message[Any],
        queue: Any,
        swallow: tuple[type[BaseException], ...],
    ) -> None:
        actor = self.broker.get_actor(message.actor_name)
        self.ran[message.actor_name] += 1
        try:
            self.call(actor.fn, *message.args, **message.kwargs)
        except dramatiq.Retry:
            retries = message.options.get("retries", 0) + 1
            if retries > actor.options.get("max_retries", 20):
                self.dead.append(message)
            else:
                self.retried += 1
                queue.put(message.copy(options={**message.options, "retries": retries}).encode())
        except swallow:
            self.dead.append(message)  # the worker died with it; the broker never saw an ack

    def __call__(self, *, swallow: tuple[type[BaseException], ...] = ()) -> int:
        """Run everything, including what the actors enqueue; returns how many ran."""
        steps = 0
        while self.step(swallow=swallow):
            steps += 1
            if steps > MAX_STEPS:
                raise AssertionError(f"the broker still has messages after {MAX_STEPS} steps")
        return steps
