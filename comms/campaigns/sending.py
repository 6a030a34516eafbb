"""The one place a message is handed to a provider: where it is allowed or denied.

For a batch of deliveries, in one transaction: lock the rows (skipping any another worker
holds), take the *shared* sender lock on every recipient's address key, ask the gate, record
each decision on its delivery, hand the allowed messages to the provider, record the results,
commit. A withdrawal takes the *exclusive* lock on the address key, so it waits for this batch
to commit, and every batch that starts after it sees it (DESIGN §3 "Immediately").

If the provider fails transiently the whole transaction rolls back (nothing is recorded as
sent) and the batch is retried later with the same ``external_id`` per message, which the
provider treats as duplicates: a crash between hand-off and commit never sends twice.

Outages and throttling (``integrations.health``): before the gate, the provider is asked
whether it may be called (its circuit breaker, a 429's pause, the shared rate limit). What is
held back or fails is retried by the rules of ``comms.campaigns.retries``; each retry asks the
gate again.

The four ways out, each below: campaign messages one by one (``deliveries_send``, any
``MessageSender``); a campaign sent in bulk to a segment by the provider (``segment_send``, any
``SegmentSender``: snapshot and final diff under the same lock and gate); service messages that
answer the person and so skip the marketing gate (``reply_send``, ``service_message_send``); and
the studio's test send to staff (``studio_test_send``). Providers are found by name in the registry of
``comms.campaigns.providers``; this module knows none of them.

Longer than 400 lines on purpose: it is the one file to read to know where a message is allowed
or denied. What is not a decision lives beside it: ``compose`` (the message), ``retries`` (when
again), ``finish`` (when a campaign is over).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from comms.campaigns import providers
from comms.campaigns.compose import message_for
from comms.campaigns.finish import campaign_finish_if_done
from comms.campaigns.followups.handoff import followup_stops
from comms.campaigns.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    Reply,
    ReplyStatus,
)
from comms.campaigns.providers import MessageResult, MessageSender, OutboundMessage, SegmentSender
from comms.campaigns.retries import (
    HandOffStopped,
    RetryLater,
    record_stop,
    segment_retry_later,
    service_message_stopped,
)
from comms.core.logs import redact
from comms.core.metrics import provider_error
from comms.suppression.gate import check_many
from comms.suppression.keys import address_key
from comms.suppression.locks import sender_lock
from comms.suppression.models import Source
from comms.suppression.services import Principal, suppression_add
from integrations import health
from integrations.errors import IntegrationError
from integrations.health import Held

__all__ = [
    "BatchOutcome",
    "Held",
    "RetryLater",
    "deliveries_send",
    "next_send_window",
    "reply_send",
    "segment_send",
    "service_message_send",
    "studio_test_send",
]

logger = logging.getLogger(__name__)
OSLO = ZoneInfo("Europe/Oslo")


@dataclass
class BatchOutcome:
    sent: int = 0
    denied: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    # (provider, channel, address) the provider blocks: suppressed for every brand after commit.
    blocked_addresses: list[tuple[str, str, str]] = field(default_factory=list)
    campaign_ids: set[int] = field(default_factory=set)


# --- the provider, asked and called -----------------------------------------------------------


def _admit(provider: str) -> bool:
    """Ask before a hand-off whether ``provider`` may be called now (its circuit, its 429 pause,
    the shared rate limit). Raises ``Held``; returns True when this hand-off is the probe of an
    open circuit. Asked before the gate: the gate is asked after it, right before the hand-off."""
    return health.admit(provider)


def _sender(provider: str) -> MessageSender:
    found = providers.get(provider)
    if not isinstance(found, MessageSender):
        raise IntegrationError(f"provider {provider!r} cannot send campaign messages here", permanent=True)
    return found


def _send(provider: str, messages: Sequence[OutboundMessage]) -> list[MessageResult]:
    """Hand ``messages`` over (in the provider's batch size); the provider's answer is reported
    to its shared health state (a transient failure counts towards opening the circuit, a 429
    throttles every sender)."""
    results: list[MessageResult] = []
    try:
        sender = _sender(provider)
        for start in range(0, len(messages), sender.max_batch):
            results.extend(sender.send_batch(messages[start : start + sender.max_batch]))
    except IntegrationError as exc:
        provider_error(provider, permanent=exc.permanent)
        if exc.throttled:
            health.record_throttle(provider, exc.retry_after)
            health.record_success(provider)  # it answered: a 429 is not an outage
        elif exc.permanent:
            health.record_success(provider)
        else:
            health.record_failure(provider)
        raise
    health.record_success(provider)
    return results


# --- campaign messages, one by one ------------------------------------------------------------


def next_send_window(now: dt.datetime) -> dt.datetime | None:
    """None inside the SMS send window (local time), else the moment it next opens.
    A window of None (tests, transactional use) is always open."""
    if settings.SMS_SEND_WINDOW is None:
        return None
    (from_h, from_m), (until_h, until_m) = settings.SMS_SEND_WINDOW
    local = now.astimezone(OSLO)
    opens = local.replace(hour=from_h, minute=from_m, second=0, microsecond=0)
    closes = local.replace(hour=until_h, minute=until_m, second=0, microsecond=0)
    if opens <= local < closes:
        return None
    if local >= closes:
        opens = (opens + dt.timedelta(days=1)).replace(hour=from_h, minute=from_m)
    return opens


def deliveries_send(*, delivery_ids: Sequence[int]) -> BatchOutcome:
    """Decide and send one batch. Raises ``RetryLater`` when (part of) it must be tried again:
    the provider failed transiently, throttled, or its circuit is open."""
    ids = list(delivery_ids)
    try:
        with transaction.atomic():
            outcome = _send_locked(ids)
    except HandOffStopped as stopped:
        # The whole batch rolled back; the gate's denials in it are decided (and recorded) again
        # by the retry.
        delay = record_stop(stopped, batch_ids=ids)
        if delay is None:
            return BatchOutcome()  # every message of it is settled (failed after its window)
        raise RetryLater(str(stopped), max(int(delay * 1000), 1)) from stopped
    _after_commit(outcome)
    return outcome


def _send_locked(ids: list[int]) -> BatchOutcome:
    outcome = BatchOutcome()
    deliveries = list(
        Delivery.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related(
            "campaign",
            "campaign__brand",
            "campaign__purpose",
            "contact",
            "contact__brand",  # render() reads {brand}: one query per message without it
            "contact__home_centre",
        )
        .filter(pk__in=ids)
        .filter(Q(status=DeliveryStatus.QUEUED) | Q(status=DeliveryStatus.DEFERRED))
        .order_by("id")
    )
    now = timezone.now()
    by_campaign: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        if delivery.status == DeliveryStatus.DEFERRED and (delivery.deferred_until or now) > now:
            outcome.skipped += 1
            continue
        by_campaign[delivery.campaign_id].append(delivery)
    for group in by_campaign.values():
        campaign = group[0].campaign
        outcome.campaign_ids.add(campaign.pk)
        if campaign.status != CampaignStatus.SENDING:
            outcome.skipped += len(group)  # paused or cancelled: leave them for resume
            continue
        _send_group(campaign, group, outcome)
    return outcome


def _defer(delivery: Delivery, until: dt.datetime, reason: str, now: dt.datetime) -> None:
    delivery.status = DeliveryStatus.DEFERRED
    delivery.deferred_until = until
    delivery.reason = reason
    delivery.decided_at = now
    if reason == "quiet_hours":
        # What could not go out today goes out in the next window, never fails for an outage
        # that met the evening: its retry window starts afresh then.
        delivery.failing_since = None


def _send_group(campaign: Campaign, group: list[Delivery], outcome: BatchOutcome) -> None:
    channel = campaign.channel
    now = timezone.now()
    # A follow-up first meets its own rules (conversion, the window after the visit); an
    # ordinary campaign's deliveries are never stopped here.
    changed: list[Delivery] = followup_stops(group, now)
    if changed:
        outcome.denied += len(changed)
        stopped = {delivery.pk for delivery in changed}
        group = [delivery for delivery in group if delivery.pk not in stopped]
    if channel == "sms":
        window = next_send_window(now)
        if window is not None:
            for delivery in group:
                _defer(delivery, window, "quiet_hours", now)
            outcome.deferred += len(group)
            _save_decisions([*changed, *group])
            return

    candidates: list[Delivery] = []
    for delivery in group:
        address = delivery.contact.address_for(channel)
        if not address:
            delivery.status, delivery.reason, delivery.decided_at = DeliveryStatus.DENIED, "no_address", now
            changed.append(delivery)
            outcome.denied += 1
            continue
        delivery.address_key = address_key(channel, address)
        candidates.append(delivery)

    if candidates:
        # May the provider be called now? Before the locks and the gate, which come right
        # before the hand-off.
        try:
            _admit(campaign.provider)
        except Held as held:
            raise HandOffStopped("held", [d.pk for d in candidates], held=held) from held

    # The shared lock first, then the gate: a withdrawal committed before we got the lock is seen.
    sender_lock(d.address_key for d in candidates)
    decisions = check_many(
        contacts=[d.contact for d in candidates], channel=channel, purpose=campaign.purpose
    )
    decided_at = timezone.now()

    allowed: list[Delivery] = []
    for delivery in candidates:
        decision = decisions[delivery.contact_id]
        delivery.reason = decision.reason
        delivery.decision_event_id = decision.event_id
        delivery.decided_at = decided_at
        if decision.allowed:
            allowed.append(delivery)
        else:
            delivery.status = DeliveryStatus.DENIED
            outcome.denied += 1
        changed.append(delivery)

    allowed = _apply_frequency_cap(campaign, allowed, decided_at, outcome)
    messages = [message_for(campaign, delivery) for delivery in allowed]
    if messages:
        try:
            results, refused = _hand_over(campaign.provider, messages)
        except IntegrationError as exc:
            kind = "throttled" if exc.throttled else "failed"
            raise HandOffStopped(kind, [d.pk for d in allowed], error=exc) from exc
        for delivery in allowed:
            delivery.attempts += 1
            external_id = str(delivery.external_id)
            if external_id in refused:
                delivery.status, delivery.last_error = DeliveryStatus.FAILED, refused[external_id][:300]
                outcome.failed += 1
                continue
            result = results[external_id]
            if result.status == "accepted":
                delivery.status, delivery.provider_id, delivery.sent_at = (
                    DeliveryStatus.SENT,
                    result.provider_id or "",
                    decided_at,
                )
                outcome.sent += 1
            else:
                # The provider refused this one message (invalid or blocked recipient): only it fails.
                delivery.status = DeliveryStatus.FAILED
                delivery.last_error = f"rejected: {result.error_code or 'unknown'}"
                outcome.failed += 1
                if result.error_code == "blocked_recipient":
                    address = delivery.contact.address_for(channel) or ""
                    outcome.blocked_addresses.append((campaign.provider, channel, address))
    _save_decisions(changed)


def _hand_over(
    provider: str, messages: list[OutboundMessage]
) -> tuple[dict[str, MessageResult], dict[str, str]]:
    """Hand ``messages`` over: (results by external_id, error by external_id of the messages
    refused for good). A 400 refuses a whole batch for what may be one bad message, so the batch
    is split until the bad one is alone and only it fails. Transient errors and 429s raise."""
    try:
        return {r.external_id: r for r in _send(provider, messages)}, {}
    except IntegrationError as exc:
        if not exc.permanent:
            raise
        if exc.status == 400 and len(messages) > 1:
            middle = len(messages) // 2
            first, first_refused = _hand_over(provider, messages[:middle])
            second, second_refused = _hand_over(provider, messages[middle:])
            return {**first, **second}, {**first_refused, **second_refused}
        return {}, {m.external_id: exc.message for m in messages}


# (attribute, PostgreSQL array type) of every column a decision writes, id first.
_DECISION_COLUMNS = (
    ("id", "bigint"),
    ("status", "text"),
    ("reason", "text"),
    ("decision_event_id", "bigint"),
    ("decided_at", "timestamptz"),
    ("address_key", "text"),
    ("provider_id", "text"),
    ("sent_at", "timestamptz"),
    ("attempts", "integer"),
    ("last_error", "text"),
    ("deferred_until", "timestamptz"),
    ("failing_since", "timestamptz"),
    ("segments", "smallint"),
    ("short_code", "text"),
)


def _save_decisions(changed: list[Delivery]) -> None:
    """Write the batch's decisions in one statement. On PostgreSQL an UPDATE … FROM unnest() of
    one array per column: ``bulk_update`` builds a CASE per row and column, which cost about 5 ms
    of CPU per message (most of a batch's time). SQLite keeps ``bulk_update``."""
    if not changed:
        return
    if connection.vendor != "postgresql":
        fields = [name for name, _ in _DECISION_COLUMNS[1:]]  # get_field() takes attnames too
        Delivery.objects.bulk_update(changed, fields, batch_size=1000)
        return
    names = [name for name, _ in _DECISION_COLUMNS]
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in _DECISION_COLUMNS)
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Delivery._meta.db_table} AS d SET {assignments}"
            f" FROM unnest({arrays}) AS v({', '.join(names)}) WHERE d.id = v.id",
            [[getattr(delivery, name) for delivery in changed] for name in names],
        )


def _apply_frequency_cap(
    campaign: Campaign, allowed: list[Delivery], now: dt.datetime, outcome: BatchOutcome
) -> list[Delivery]:
    limit, days = settings.FREQUENCY_CAP[campaign.channel]
    since = now - dt.timedelta(days=days)
    recent = {
        row["contact_id"]: row
        for row in Delivery.objects.filter(
            contact_id__in=[d.contact_id for d in allowed],
            channel=campaign.channel,
            sent_at__gte=since,
        )
        .exclude(campaign=campaign)
        .values("contact_id")
        .annotate(count=Count("id"), oldest=Min("sent_at"))
    }
    kept = []
    for delivery in allowed:
        row = recent.get(delivery.contact_id)
        if row and row["count"] >= limit:
            _defer(delivery, row["oldest"] + dt.timedelta(days=days), "frequency_cap", now)
            outcome.deferred += 1
        else:
            kept.append(delivery)
    return kept


def _after_commit(outcome: BatchOutcome) -> None:
    for provider, channel, address in outcome.blocked_addresses:
        if address:
            suppression_add(
                channel=channel,
                address=address,
                reason="blocked_recipient",
                source=Source(f"{provider}_webhook"),
                principal=Principal(actor="system", recorded_by=f"{provider}-send-result"),
            )
    if outcome.sent and outcome.campaign_ids:
        # The provider answered: no campaign of it is paused for its being unavailable any more.
        providers = Campaign.objects.filter(pk__in=outcome.campaign_ids).values("provider")
        Campaign.objects.filter(provider__in=providers, provider_paused_since__isnull=False).update(
            provider_paused_since=None
        )
    for campaign_id in outcome.campaign_ids:
        campaign_finish_if_done(campaign_id=campaign_id)


# --- a campaign sent in bulk by the provider, to a segment built at send time ---------------
#
# (DESIGN §3 "Immediately", §4) 1. Snapshot: ask the gate for every queued delivery (under the
# senders' shared lock) and record each decision; the allowed ones stay queued. 2. Build: the
# provider adds the allowed addresses its audience lacks, creates a segment of exactly them and
# the campaign with its content (ids kept, so a retry reuses them). 3. Final diff and send, in
# one transaction holding the shared lock on every allowed address: ask the gate again, take
# every address withdrawn since the snapshot out of the segment, then send. A withdrawal
# committed before this point is excluded; one after it waits for the commit, and the ledger
# listener of the provider pushes it (e.g. Mailchimp ``unsubscribed``). The snapshot, the members
# and the removals are kept by the provider as evidence.


def segment_send(*, campaign_id: int) -> str:
    """Send one due campaign of a ``SegmentSender``. Raises ``RetryLater`` for a transient
    failure (the actor retries; every step is safe to repeat); a permanent one fails it."""
    with _only_runner(campaign_id) as acquired:
        if not acquired:
            return "another worker is sending it"
        return _segment_send(campaign_id)


@contextmanager
def _only_runner(campaign_id: int) -> Iterator[bool]:
    """A session advisory lock so two workers (the tick re-enqueues) never build one campaign twice."""
    if connection.vendor != "postgresql":
        yield True
        return
    # The lock's name predates the contract: a worker of the previous release holds the same one.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('mailchimp-send'), %s)", [campaign_id])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext('mailchimp-send'), %s)", [campaign_id])


def _segment_sender(campaign: Campaign) -> SegmentSender:
    found = providers.get(campaign.provider)
    if not isinstance(found, SegmentSender):
        raise IntegrationError(f"provider {campaign.provider!r} does not send to segments", permanent=True)
    return found


def _segment_send(campaign_id: int) -> str:
    campaign = Campaign.objects.select_related("brand", "purpose").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != CampaignStatus.SENDING:
        return "not sending"
    provider = _segment_sender(campaign)
    existing = provider.segment_state(campaign)
    if existing is not None and existing.sent_at is not None:
        return "already sent"
    problem = provider.segment_problem(campaign)
    if problem is not None:
        return _segment_fail(campaign_id, problem)
    if existing is None or not existing.built:
        _segment_snapshot(provider, campaign)
    try:
        found = list(
            Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.QUEUED)
            .order_by("id")
            .values_list("contact__email", flat=True)
        )
        provider.segment_build(campaign, [email for email in found if email])
        _segment_final_diff_and_send(provider, campaign)
    except IntegrationError as exc:
        if exc.permanent:
            logger.error("%s campaign %s failed: %s", provider.label, campaign_id, exc.message)
            return _segment_fail(campaign_id, exc.message)
        retry, error = segment_retry_later(provider, campaign, exc, held=getattr(exc, "held", ""))
        if retry is not None:
            raise retry from exc
        logger.warning("%s campaign %s failed after its retry window: %s", provider.label, campaign.pk, exc.message)
        return _segment_fail(campaign_id, f"{provider.label} unavailable: {error}", reason="provider_unavailable")
    Campaign.objects.filter(pk=campaign_id).update(provider_paused_since=None)
    campaign_finish_if_done(campaign_id=campaign_id)
    return "sent"


def _segment_fail(campaign_id: int, detail: str, *, reason: str = "") -> str:
    """The send failed for good: its allowed messages are failed with the error (never left
    queued), and the campaign ends ``failed``; a marketer can retry them."""
    pending = Delivery.objects.filter(campaign_id=campaign_id, status=DeliveryStatus.QUEUED)
    if reason:
        pending.update(status=DeliveryStatus.FAILED, last_error=detail[:300], reason=reason)
    else:
        pending.update(status=DeliveryStatus.FAILED, last_error=detail[:300])
    if not campaign_finish_if_done(campaign_id=campaign_id):
        Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.SENDING).update(
            status=CampaignStatus.FAILED, status_detail=detail[:300], finished_at=timezone.now()
        )
    return "failed"


def _segment_snapshot(provider: SegmentSender, campaign: Campaign) -> None:
    """Decide every undecided queued delivery once; denials are final, the allowed stay queued."""
    with transaction.atomic():
        undecided = list(
            Delivery.objects.select_for_update(of=("self",))
            .select_related("contact")
            .filter(campaign=campaign, status=DeliveryStatus.QUEUED, decided_at__isnull=True)
            .order_by("id")
        )
        now = timezone.now()
        candidates = []
        for delivery in undecided:
            if not delivery.contact.email:
                delivery.status, delivery.reason, delivery.decided_at = DeliveryStatus.DENIED, "no_address", now
                continue
            delivery.address_key = address_key("email", delivery.contact.email)
            candidates.append(delivery)
        # The shared lock first, then the gate.
        sender_lock(d.address_key for d in candidates)
        decisions = check_many(contacts=[d.contact for d in candidates], channel="email", purpose=campaign.purpose)
        decided_at = timezone.now()
        for delivery in candidates:
            decision = decisions[delivery.contact_id]
            delivery.reason, delivery.decision_event_id, delivery.decided_at = (
                decision.reason,
                decision.event_id,
                decided_at,
            )
            if not decision.allowed:
                delivery.status = DeliveryStatus.DENIED
        Delivery.objects.bulk_update(
            undecided, ["status", "reason", "decision_event", "decided_at", "address_key"], batch_size=1000
        )
        allowed = Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.QUEUED).order_by("id")
        members = [[d_id, key] for d_id, key in allowed.values_list("id", "address_key")]
        provider.segment_snapshot(campaign, snapshot_at=decided_at, members=members)


def _segment_final_diff_and_send(provider: SegmentSender, campaign: Campaign) -> None:
    with transaction.atomic():
        allowed = list(
            Delivery.objects.select_for_update(of=("self",))
            .select_related("contact")
            .filter(campaign=campaign, status=DeliveryStatus.QUEUED)
            .order_by("id")
        )
        # The shared lock, then the gate: every withdrawal committed until now is seen, and a
        # later one waits until the send call has returned.
        sender_lock(d.address_key for d in allowed)
        decisions = check_many(contacts=[d.contact for d in allowed], channel="email", purpose=campaign.purpose)
        now = timezone.now()
        withdrawn = [d for d in allowed if not decisions[d.contact_id].allowed]
        for delivery in withdrawn:
            decision = decisions[delivery.contact_id]
            delivery.status, delivery.reason = DeliveryStatus.DENIED, decision.reason
            delivery.decision_event_id, delivery.decided_at = decision.event_id, now
        provider_id = provider.segment_send(campaign, remove=[d.contact.email or "" for d in withdrawn])
        sent_at = timezone.now()
        for delivery in allowed:
            if delivery.status == DeliveryStatus.QUEUED:
                delivery.status, delivery.sent_at = DeliveryStatus.SENT, sent_at
                delivery.provider_id = provider_id
        Delivery.objects.bulk_update(
            allowed,
            ["status", "reason", "decision_event", "decided_at", "sent_at", "provider_id"],
            batch_size=1000,
        )
        removed = [[d.pk, d.address_key, d.reason] for d in withdrawn]
        provider.segment_sent(campaign, removed=removed, final_diff_at=now, sent_at=sent_at)


# --- service messages: they answer the person, so they skip the marketing gate ---------------
#
# A reply (the STOPP confirmation, the START question, the JA receipt, the HJELP text) answers a
# message the person has just sent us, and a STOPP confirmation must reach exactly the person
# who just opted out (the gate would deny it, as it should deny every marketing message to
# them). A member message (a double-opt-in confirmation, a fresh preferences or rights link) is
# asked for by the person on our pages (``comms.web.messages``): a confirmation must reach a
# person the gate still denies, or double opt-in could never lift a withdrawal. Each is a row
# of its own (``Reply``, ``MemberMessage``), created once per request and sent only to the
# person who asked; both go to ``settings.SERVICE_MESSAGE_PROVIDER``, after its admission.


def reply_send(*, reply_id: int) -> str:
    """Hand one queued reply to the service provider. Raises ``RetryLater`` when it must be tried
    again (a transient failure, a 429, an open circuit) until ``COMMS_SEND_RETRY_WINDOW`` after it
    was created; the retry reuses the reply's ``external_id``, so the provider never sends it twice."""
    with transaction.atomic():
        reply = (
            Reply.objects.select_for_update(skip_locked=True)
            .filter(pk=reply_id, status=ReplyStatus.QUEUED)
            .first()
        )
        if reply is None:
            return "nothing to send"
        message = OutboundMessage(
            external_id=str(reply.external_id),
            channel="sms",
            to=reply.to,
            sender=reply.sender,
            text=reply.text,
            tags=[f"reply:{reply.keyword}"],
        )
        retry = service_message_send(reply, message)
        reply.save(update_fields=["status", "provider_id", "sent_at", "attempts", "last_error"])
    if retry is not None:
        raise retry
    if reply.status == ReplyStatus.FAILED:
        logger.warning("reply %s failed for good: %s", reply.pk, redact(reply.last_error))
    return str(reply.status)


def service_message_send(row: Any, message: OutboundMessage) -> RetryLater | None:
    """One hand-off of a service message (``row``: a reply or member message, whose statuses
    are ``sent`` and ``failed``), recorded on the row (not saved): the retry to raise, if any."""
    provider = settings.SERVICE_MESSAGE_PROVIDER
    stop: IntegrationError | Held | None = None
    try:
        _admit(provider)
        row.attempts += 1
        [result] = _send(provider, [message])
    except Held as held:
        stop = held
    except IntegrationError as exc:
        row.last_error = exc.message[:300]
        if exc.permanent:
            row.status = "failed"
        else:
            stop = exc
    else:
        if result.status == "accepted":
            row.status, row.provider_id = "sent", result.provider_id or ""
            row.sent_at = timezone.now()
        else:
            row.status = "failed"
            row.last_error = f"rejected: {result.error_code or 'unknown'}"
    return service_message_stopped(row, stop)


# --- the studio's test send -------------------------------------------------------------------


def studio_test_send(provider: str, message: OutboundMessage) -> MessageResult:
    """Hand one test message of a campaign to a staff address (``comms.studio``): after the
    provider's admission like every hand-off, but not through the gate or the sender lock. The
    recipient is staff, never a member (the studio checks it before), the text is marked
    ``[TEST]``, and it is a ``TestSend`` row, never a delivery: no consent is asked for and none
    could be. Raises ``IntegrationError``, or ``Held`` while the provider may not be called."""
    _admit(provider)
    [result] = _send(provider, [message])
    return result

