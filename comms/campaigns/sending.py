"""The one place a message is handed to a provider.

For a batch of deliveries, in one transaction: lock the rows (skipping any another worker
holds), take the *shared* sender lock on every recipient's address key, ask the gate, record
each decision on its delivery, hand the allowed messages to the provider, record the results,
commit. A withdrawal takes the *exclusive* lock on the address key, so it waits for this batch
to commit, and every batch that starts after it sees it (DESIGN §3 "Immediately").

If the provider fails transiently the whole transaction rolls back (nothing is recorded as
sent) and the batch is retried later with the same ``external_id`` per message, which the
provider treats as duplicates: a crash between hand-off and commit never sends twice.

Outages and throttling (``integrations.health``): before the gate, the provider is asked
whether it may be called (its circuit breaker, a 429's pause, the shared rate limit). A batch
held back is retried later without using up anything; a transient failure is retried with
exponential backoff and jitter until ``COMMS_SEND_RETRY_WINDOW`` after the message's first
failure, then the message is recorded as failed (``provider_unavailable``), never lost, and a
marketer can retry it. Each retry asks the gate again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Max, Min, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from comms.campaigns.content import render, sms_length, sms_opt_out
from comms.campaigns.followups.handoff import followup_stops
from comms.campaigns.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    FollowUpRule,
    Reply,
    ReplyStatus,
)
from comms.campaigns.providers import Held, MessageResult, OutboundMessage, provider_admit, provider_send
from comms.core.logs import redact
from comms.links import make_token, short_code_for, short_url, unsubscribe_url
from comms.suppression.gate import check_many
from comms.suppression.keys import address_key
from comms.suppression.locks import sender_lock
from integrations import health
from integrations.errors import IntegrationError

logger = logging.getLogger(__name__)
OSLO = ZoneInfo("Europe/Oslo")


class RetryLater(Exception):
    """The provider is unavailable for now; retry the batch after ``delay_ms``."""

    def __init__(self, message: str, delay_ms: int) -> None:
        super().__init__(message)
        self.delay_ms = delay_ms


@dataclass
class BatchOutcome:
    sent: int = 0
    denied: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    # (channel, address) the operator blocks: suppressed for every brand after commit.
    blocked_addresses: list[tuple[str, str]] = field(default_factory=list)
    campaign_ids: set[int] = field(default_factory=set)


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
    except _HandOffStopped as stopped:
        # The whole batch rolled back; the gate's denials in it are decided (and recorded) again
        # by the retry.
        delay = _record_stop(stopped, batch_ids=ids)
        if delay is None:
            return BatchOutcome()  # every message of it is settled (failed after its window)
        raise RetryLater(str(stopped), max(int(delay * 1000), 1)) from stopped
    _after_commit(outcome)
    return outcome


class _HandOffStopped(Exception):
    """The batch did not reach the provider: ``kind`` is ``failed`` (a transient error),
    ``throttled`` (a 429) or ``held`` (not admitted: open circuit, pause, rate limit)."""

    def __init__(
        self,
        kind: str,
        delivery_ids: list[int],
        *,
        error: IntegrationError | None = None,
        held: Held | None = None,
    ) -> None:
        super().__init__(error.message if error is not None else str(held))
        self.kind = kind
        self.delivery_ids = delivery_ids
        self.error = error
        self.held = held


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
            provider_admit(campaign.provider)
        except Held as held:
            raise _HandOffStopped("held", [d.pk for d in candidates], held=held) from held

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
    messages = [_message(campaign, delivery) for delivery in allowed]
    if messages:
        try:
            results, refused = _hand_over(campaign.provider, messages)
        except IntegrationError as exc:
            kind = "throttled" if exc.throttled else "failed"
            raise _HandOffStopped(kind, [d.pk for d in allowed], error=exc) from exc
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
                    outcome.blocked_addresses.append((channel, address))
    _save_decisions(changed)


def _hand_over(
    provider: str, messages: list[OutboundMessage]
) -> tuple[dict[str, MessageResult], dict[str, str]]:
    """Hand ``messages`` over: (results by external_id, error by external_id of the messages
    refused for good). A 400 refuses a whole batch for what may be one bad message, so the batch
    is split until the bad one is alone and only it fails. Transient errors and 429s raise."""
    try:
        return {r.external_id: r for r in provider_send(provider, messages)}, {}
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


def _message(campaign: Campaign, delivery: Delivery) -> OutboundMessage:
    contact = delivery.contact
    brand = campaign.brand
    token = make_token(
        contact_id=contact.pk,
        purpose_id=campaign.purpose_id,
        channel=campaign.channel,
        address_key=delivery.address_key,
    )
    callback = f"{settings.PUBLIC_BASE_URL.rstrip('/')}/hooks/lifevision/reports"
    tags = [f"campaign:{campaign.pk}"]
    if campaign.channel == "sms":
        sender = settings.LIFEVISION_SMS_SENDER or brand.sms_sender or "comms"
        link = None
        if not sender.isdigit():
            # Derived from the external_id, not random: after a crash between hand-off and commit
            # the retry must record the very link LifeVision already sent (it keeps the first).
            delivery.short_code = delivery.short_code or short_code_for(str(delivery.external_id))
            link = short_url(delivery.short_code)
        text = f"{render(campaign.text, contact)}\n{sms_opt_out(sender, link)}"
        delivery.segments = sms_length(text).segments
        return OutboundMessage(
            external_id=str(delivery.external_id),
            channel="sms",
            to=contact.mobile or "",
            sender=sender,
            text=text,
            callback_url=callback,
            tags=tags,
        )
    url = unsubscribe_url(token)
    footer_text = f"\n\nMeld deg av: {url}"
    footer_html = (
        f'<p style="font-size:12px"><a href="{url}">Meld deg av</a> / <a href="{url}">Unsubscribe</a></p>'
    )
    html = render(campaign.html, contact) if campaign.html else ""
    return OutboundMessage(
        external_id=str(delivery.external_id),
        channel="email",
        to=contact.email or "",
        sender=brand.email_from or brand.name,
        subject=render(campaign.subject, contact),
        text=render(campaign.text, contact) + footer_text,
        html=(html + footer_html) if html else None,
        headers={"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        callback_url=callback,
        tags=tags,
    )


_PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)


def _record_stop(stopped: _HandOffStopped, *, batch_ids: list[int]) -> float | None:
    """Record why the batch did not reach the provider; returns seconds until its retry, or None
    when none of it is left to retry (each message past its window is failed, not lost)."""
    ids = stopped.delivery_ids
    now = timezone.now()
    held, error = stopped.held, stopped.error
    if stopped.kind == "throttled" or (held is not None and held.reason != "provider_unavailable"):
        # The provider asked us to slow down, or the shared limit did: nothing is used up. Only
        # enqueued_at moves on, so the sweep leaves the batch in the broker's hands.
        Delivery.objects.filter(pk__in=ids, status__in=_PENDING).update(enqueued_at=now)
        if held is not None:
            return held.delay_s
        assert error is not None
        return _throttled_delay(error)
    window = dt.timedelta(seconds=settings.SEND_RETRY_WINDOW)
    with transaction.atomic():
        pending = Delivery.objects.filter(pk__in=ids, status__in=_PENDING)
        if error is not None:
            pending.update(
                attempts=F("attempts") + 1,
                last_error=error.message[:300],
                enqueued_at=now,
                failing_since=Coalesce(F("failing_since"), Value(now)),
            )
        else:
            # Held by an open circuit: the outage runs the window's clock, and the campaign shows
            # it is paused because its provider is unavailable, since the circuit opened.
            assert held is not None
            since = dt.datetime.fromtimestamp(held.since or now.timestamp(), tz=dt.UTC)
            pending.update(enqueued_at=now, failing_since=Coalesce(F("failing_since"), Value(now)))
            Campaign.objects.filter(
                pk__in=pending.values("campaign_id"), provider_paused_since__isnull=True
            ).update(provider_paused_since=since)
        exhausted = pending.filter(failing_since__lte=now - window)
        campaign_ids = set(exhausted.values_list("campaign_id", flat=True))
        if campaign_ids:
            exhausted.update(status=DeliveryStatus.FAILED, reason="provider_unavailable")
            logger.warning(
                "deliveries failed after %ss of provider failures (campaigns %s)",
                int(settings.SEND_RETRY_WINDOW),
                sorted(campaign_ids),
            )
        left = pending.aggregate(attempts=Max("attempts"), since=Min("failing_since"))
    for campaign_id in campaign_ids:
        campaign_finish_if_done(campaign_id=campaign_id)
    if left["since"] is None:
        # Nothing that failed is left; the rest of the batch (the gate's denials rolled back
        # with it) is decided by a prompt retry.
        rest = Delivery.objects.filter(pk__in=batch_ids, status__in=_PENDING).exists()
        return settings.SEND_BACKOFF_MIN if rest else None
    delay = held.delay_s if held is not None else health.backoff(int(left["attempts"] or 1))
    first_failure: dt.datetime = left["since"]
    return _within_window(delay, (first_failure + window - now).total_seconds())


def _throttled_delay(error: IntegrationError) -> float:
    """After a 429: the provider's Retry-After (1 s without one), jittered."""
    return health.jitter(max(float(error.retry_after or 1.0), 0.05)) * 2


def _within_window(delay: float, remaining: float) -> float:
    """Retry no later than the window's end, so a message is failed when its window is over."""
    return max(min(delay, remaining + 0.01), 0.01)


def _after_commit(outcome: BatchOutcome) -> None:
    from comms.suppression.models import Source
    from comms.suppression.services import Principal, suppression_add

    for channel, address in outcome.blocked_addresses:
        if address:
            suppression_add(
                channel=channel,
                address=address,
                reason="blocked_recipient",
                source=Source.LIFEVISION_WEBHOOK,
                principal=Principal(actor="system", recorded_by="lifevision-send-result"),
            )
    if outcome.sent and outcome.campaign_ids:
        # The provider answered: no campaign of it is paused for its being unavailable any more.
        providers = Campaign.objects.filter(pk__in=outcome.campaign_ids).values("provider")
        Campaign.objects.filter(provider__in=providers, provider_paused_since__isnull=False).update(
            provider_paused_since=None
        )
    for campaign_id in outcome.campaign_ids:
        campaign_finish_if_done(campaign_id=campaign_id)


def campaign_finish_if_done(*, campaign_id: int) -> bool:
    """Mark a sending campaign finished once nothing is queued or deferred any more: ``sent``
    when every allowed message was handed over, ``sent_with_failures`` when some never reached
    the provider (the count and reasons in ``status_detail``), ``failed`` when none did. A
    follow-up rule's campaign never finishes: its rule goes on planning messages while active."""
    from comms.campaigns.selectors import campaign_failures

    if FollowUpRule.objects.filter(campaign_id=campaign_id).exists():
        return False
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update().filter(pk=campaign_id, status=CampaignStatus.SENDING).first()
        )
        if campaign is None:
            return False
        if Delivery.objects.filter(campaign_id=campaign_id, status__in=_PENDING).exists():
            return False
        failures = campaign_failures(campaign_id=campaign_id)
        handed_over = Delivery.objects.filter(campaign_id=campaign_id, sent_at__isnull=False).exists()
        reasons = ", ".join(f"{reason}: {n}" for reason, n in failures.by_reason.items())
        if not failures.count:
            campaign.status, campaign.status_detail = CampaignStatus.SENT, ""
        elif not handed_over:
            campaign.status = CampaignStatus.FAILED
            campaign.status_detail = f"no message reached the provider; {failures.count} failed ({reasons})"
        else:
            campaign.status = CampaignStatus.SENT_WITH_FAILURES
            campaign.status_detail = f"{failures.count} messages failed ({reasons})"
        campaign.status_detail = campaign.status_detail[:300]
        campaign.finished_at = timezone.now()
        campaign.provider_paused_since = None
        campaign.save(
            update_fields=["status", "status_detail", "finished_at", "provider_paused_since", "updated_at"]
        )
    if failures.count:
        logger.warning("campaign %s finished %s: %s", campaign_id, campaign.status, campaign.status_detail)
    return True


# --- replies to inbound SMS -----------------------------------------------------------------
#
# A reply (the STOPP confirmation, the START question, the JA receipt, the HJELP text) is a
# service message, not marketing, so it deliberately does not pass the gate: it answers a message
# the person has just sent us, and a STOPP confirmation must reach exactly the person who just
# opted out (the gate would deny it, as it should deny every marketing message to them). Only
# ``Reply`` rows, created once per inbound message by ``integrations.lifevision.callbacks``, go this way.


def _service_retry(
    *, created_at: dt.datetime, attempts: int, error: IntegrationError | None, held: Held | None
) -> float | None:
    """When to retry a service message that did not reach the provider, or None when its retry
    window (from its creation) is over: the same rules as a campaign's messages."""
    if held is not None and held.reason != "provider_unavailable":
        return held.delay_s  # paused or rate limited: nothing used up
    if error is not None and error.throttled:
        return _throttled_delay(error)
    remaining = (
        created_at + dt.timedelta(seconds=settings.SEND_RETRY_WINDOW) - timezone.now()
    ).total_seconds()
    if remaining <= 0:
        return None
    return _within_window(held.delay_s if held is not None else health.backoff(attempts), remaining)


def reply_send(*, reply_id: int) -> str:
    """Hand one queued reply to LifeVision. Raises ``RetryLater`` when it must be tried again
    (a transient failure, a 429, an open circuit) until ``COMMS_SEND_RETRY_WINDOW`` after it
    was created; the retry reuses the reply's ``external_id``, so LifeVision never sends it twice."""
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
        retry = _service_attempt(reply, message)
        reply.save(update_fields=["status", "provider_id", "sent_at", "attempts", "last_error"])
    if retry is not None:
        raise retry
    if reply.status == ReplyStatus.FAILED:
        logger.warning("reply %s failed for good: %s", reply.pk, redact(reply.last_error))
    return str(reply.status)


def _service_attempt(row: Any, message: OutboundMessage) -> RetryLater | None:
    """One hand-off of a reply or member message (``row``, whose statuses are ``sent`` and
    ``failed``) to LifeVision, recorded on the row (not saved): the retry to raise, if any."""
    stop: IntegrationError | Held | None = None
    try:
        provider_admit("lifevision")
        row.attempts += 1
        [result] = provider_send("lifevision", [message])
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
    return _stopped_service_message(row, stop)


def _stopped_service_message(row: Any, stop: IntegrationError | Held | None) -> RetryLater | None:
    """For a reply or member message that did not reach the provider: the retry to raise, or
    None after marking it failed when its window is over."""
    if stop is None:
        return None
    held = stop if isinstance(stop, Held) else None
    error = stop if isinstance(stop, IntegrationError) else None
    if error is not None and error.throttled:
        row.attempts -= 1  # a 429 is not an attempt that failed
    delay = _service_retry(created_at=row.created_at, attempts=row.attempts, error=error, held=held)
    if delay is None:
        row.status = "failed"
        row.last_error = (row.last_error or str(stop))[:300]
        return None
    return RetryLater(str(stop), max(int(delay * 1000), 1))


# --- the member pages' service messages -------------------------------------------------------
#
# A double-opt-in confirmation or a fresh preferences link, asked for by the person on our pages
# (``comms.web``). Like a reply it is not marketing and does not pass the gate: a confirmation
# must reach a person the gate still denies, or double opt-in could never lift a withdrawal.
# Every one is a ``MemberMessage`` row; it is composed only if the address is still the one
# asked for.


def member_message_send(*, message_id: int) -> str:
    """Hand one queued member message to LifeVision. Raises ``RetryLater`` when it must be tried
    again (after recording the attempt), as ``reply_send`` does; the retry reuses the message's
    ``external_id``, so LifeVision never sends it twice."""
    from comms.web.messages import member_message_compose
    from comms.web.models import MemberMessage, MemberMessageStatus

    retry: RetryLater | None = None
    with transaction.atomic():
        row = (
            MemberMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("contact", "contact__brand")
            .filter(pk=message_id, status=MemberMessageStatus.QUEUED)
            .first()
        )
        if row is None:
            return "nothing to send"
        message = member_message_compose(row)
        if message is None:
            row.status = MemberMessageStatus.CANCELLED
        else:
            retry = _service_attempt(row, message)
        row.save(update_fields=["status", "provider_id", "sent_at", "attempts", "last_error"])
    if retry is not None:
        raise retry
    if row.status == MemberMessageStatus.FAILED:
        logger.warning("member message %s failed for good: %s", row.pk, redact(row.last_error))
    return str(row.status)
