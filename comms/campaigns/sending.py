"""The one place a message is handed to a provider.

For a batch of deliveries, in one transaction: lock the rows (skipping any another worker
holds), take the *shared* sender lock on every recipient's address key, ask the gate, record
each decision on its delivery, hand the allowed messages to the provider, record the results,
commit. A withdrawal takes the *exclusive* lock on the address key, so it waits for this batch
to commit, and every batch that starts after it sees it (DESIGN §3 "Immediately").

If the provider fails transiently the whole transaction rolls back (nothing is recorded as
sent) and the batch is retried later with the same ``external_id`` per message, which the
provider treats as duplicates: a crash between hand-off and commit never sends twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Min, Q
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
from comms.campaigns.providers import OutboundMessage, provider_send
from comms.core.logs import redact
from comms.suppression.gate import check_many
from comms.suppression.keys import address_key
from comms.suppression.locks import sender_lock
from comms.web.tokens import make_token, short_code_for, short_url, unsubscribe_url
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
    """Decide and send one batch. Raises ``RetryLater`` when the provider is unavailable."""
    try:
        with transaction.atomic():
            outcome = _send_locked(list(delivery_ids))
    except _HandOffFailed as failed:
        exc = failed.error
        # Only the messages that were handed over count an attempt. The gate's denials in the
        # same batch rolled back with it; the retry decides (and records) them again.
        _record_transient_failure(failed.delivery_ids, exc)
        delay_ms = int((exc.retry_after or 0) * 1000) or None
        raise RetryLater(exc.message, delay_ms or 5000) from exc
    _after_commit(outcome)
    return outcome


class _HandOffFailed(Exception):
    """A transient provider failure, naming the deliveries whose messages were being handed over."""

    def __init__(self, error: IntegrationError, delivery_ids: list[int]) -> None:
        super().__init__(error.message)
        self.error = error
        self.delivery_ids = delivery_ids


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
            results = {r.external_id: r for r in provider_send(campaign.provider, messages)}
        except IntegrationError as exc:
            if not exc.permanent:
                raise _HandOffFailed(exc, [d.pk for d in allowed]) from exc
            for delivery in allowed:
                delivery.status, delivery.last_error = DeliveryStatus.FAILED, exc.message[:300]
                delivery.attempts += 1
            outcome.failed += len(allowed)
        else:
            for delivery in allowed:
                result = results[str(delivery.external_id)]
                delivery.attempts += 1
                if result.status == "accepted":
                    delivery.status, delivery.provider_id, delivery.sent_at = (
                        DeliveryStatus.SENT,
                        result.provider_id or "",
                        decided_at,
                    )
                    outcome.sent += 1
                else:
                    delivery.status = DeliveryStatus.FAILED
                    delivery.last_error = f"rejected: {result.error_code or 'unknown'}"
                    outcome.failed += 1
                    if result.error_code == "blocked_recipient":
                        address = delivery.contact.address_for(channel) or ""
                        outcome.blocked_addresses.append((channel, address))
    _save_decisions(changed)


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


def _record_transient_failure(ids: list[int], exc: IntegrationError) -> None:
    """Count the failed attempt; a delivery out of attempts is recorded as failed, not lost."""
    with transaction.atomic():
        # ``ids`` were all due: queued, or deferred and released (quiet hours over, cap passed).
        pending = Delivery.objects.filter(
            pk__in=ids, status__in=[DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED]
        )
        # enqueued_at: the batch is alive in the broker's retry backoff; the sweep leaves it be.
        pending.update(attempts=F("attempts") + 1, last_error=exc.message[:300], enqueued_at=timezone.now())
        exhausted = pending.filter(attempts__gte=settings.SEND_MAX_ATTEMPTS)
        if exhausted.exists():
            campaign_ids = set(exhausted.values_list("campaign_id", flat=True))
            exhausted.update(status=DeliveryStatus.FAILED, reason="provider_unavailable")
            for campaign_id in campaign_ids:
                campaign_finish_if_done(campaign_id=campaign_id)


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
    for campaign_id in outcome.campaign_ids:
        campaign_finish_if_done(campaign_id=campaign_id)


def campaign_finish_if_done(*, campaign_id: int) -> bool:
    """Mark a sending campaign finished once nothing is queued or deferred any more: ``sent``,
    or ``failed`` when not one message reached the provider and some failed. A follow-up rule's
    campaign never finishes: its rule goes on planning messages while it is active."""
    if FollowUpRule.objects.filter(campaign_id=campaign_id).exists():
        return False
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update().filter(pk=campaign_id, status=CampaignStatus.SENDING).first()
        )
        if campaign is None:
            return False
        if Delivery.objects.filter(
            campaign_id=campaign_id, status__in=[DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED]
        ).exists():
            return False
        statuses = set(
            Delivery.objects.filter(campaign_id=campaign_id).values_list("status", flat=True).distinct()
        )
        handed_over = statuses & {DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.BOUNCED}
        if not handed_over and DeliveryStatus.FAILED in statuses:
            campaign.status = CampaignStatus.FAILED
            campaign.status_detail = "no message reached the provider; see the deliveries' last_error"
        else:
            campaign.status = CampaignStatus.SENT
        campaign.finished_at = timezone.now()
        campaign.save(update_fields=["status", "status_detail", "finished_at", "updated_at"])
    return True


# --- replies to inbound SMS -----------------------------------------------------------------
#
# A reply (the STOPP confirmation, the START question, the JA receipt, the HJELP text) is a
# service message, not marketing, so it deliberately does not pass the gate: it answers a message
# the person has just sent us, and a STOPP confirmation must reach exactly the person who just
# opted out (the gate would deny it, as it should deny every marketing message to them). Only
# ``Reply`` rows, created once per inbound message by ``comms.campaigns.callbacks``, go this way.


def reply_send(*, reply_id: int) -> str:
    """Hand one queued reply to LifeVision. Raises ``RetryLater`` on a transient failure; the
    retry reuses the reply's ``external_id``, so LifeVision never sends it twice."""
    try:
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
            reply.attempts += 1
            try:
                [result] = provider_send("lifevision", [message])
            except IntegrationError as exc:
                if not exc.permanent:
                    raise
                reply.status, reply.last_error = ReplyStatus.FAILED, exc.message[:300]
            else:
                if result.status == "accepted":
                    reply.status, reply.provider_id = ReplyStatus.SENT, result.provider_id or ""
                    reply.sent_at = timezone.now()
                else:
                    reply.status = ReplyStatus.FAILED
                    reply.last_error = f"rejected: {result.error_code or 'unknown'}"
            reply.save(update_fields=["status", "provider_id", "sent_at", "attempts", "last_error"])
            if reply.status == ReplyStatus.FAILED:
                logger.warning("reply %s failed for good: %s", reply.pk, redact(reply.last_error))
            return str(reply.status)
    except IntegrationError as exc:
        with transaction.atomic():
            reply = Reply.objects.select_for_update().get(pk=reply_id)
            if reply.status != ReplyStatus.QUEUED:  # another worker got it through meanwhile
                return str(reply.status)
            reply.attempts += 1
            reply.last_error = exc.message[:300]
            if reply.attempts >= settings.SEND_MAX_ATTEMPTS:
                reply.status = ReplyStatus.FAILED
            reply.save(update_fields=["status", "attempts", "last_error"])
        if reply.status == ReplyStatus.FAILED:
            logger.warning(
                "reply %s failed after %s attempts: %s", reply_id, reply.attempts, redact(exc.message)
            )
            return str(reply.status)
        delay_ms = int((exc.retry_after or 0) * 1000) or None
        raise RetryLater(exc.message, delay_ms or 5000) from exc


# --- the member pages' service messages -------------------------------------------------------
#
# A double-opt-in confirmation or a fresh preferences link, asked for by the person on our pages
# (``comms.web``). Like a reply it is not marketing and does not pass the gate: a confirmation
# must reach a person the gate still denies, or double opt-in could never lift a withdrawal.
# Every one is a ``MemberMessage`` row; it is composed only if the address is still the one
# asked for.


def member_message_send(*, message_id: int) -> str:
    """Hand one queued member message to LifeVision. Raises ``RetryLater`` on a transient failure
    (after recording the attempt); the retry reuses the message's ``external_id``, so LifeVision
    never sends it twice."""
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
            row.attempts += 1
            try:
                [result] = provider_send("lifevision", [message])
            except IntegrationError as exc:
                row.last_error = exc.message[:300]
                if exc.permanent or row.attempts >= settings.SEND_MAX_ATTEMPTS:
                    row.status = MemberMessageStatus.FAILED
                else:
                    retry = RetryLater(exc.message, int((exc.retry_after or 0) * 1000) or 5000)
            else:
                if result.status == "accepted":
                    row.status, row.provider_id = MemberMessageStatus.SENT, result.provider_id or ""
                    row.sent_at = timezone.now()
                else:
                    row.status = MemberMessageStatus.FAILED
                    row.last_error = f"rejected: {result.error_code or 'unknown'}"
        row.save(update_fields=["status", "provider_id", "sent_at", "attempts", "last_error"])
    if retry is not None:
        raise retry
    if row.status == MemberMessageStatus.FAILED:
        logger.warning("member message %s failed for good: %s", row.pk, redact(row.last_error))
    return str(row.status)
