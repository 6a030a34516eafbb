"""Sending a Mailchimp campaign at its send time (DESIGN §3 "Immediately", §4).

1. Snapshot: ask the gate for every queued delivery (under the senders' shared lock) and record
   each decision; the allowed ones stay queued.
2. Build: add the allowed addresses Mailchimp lacks, create a static segment of exactly them,
   create the campaign and its content (ids kept, so a retry reuses them).
3. Final diff and send, in one transaction holding the shared lock on every allowed address:
   ask the gate again, take every address withdrawn since the snapshot out of the segment, then
   call send. A withdrawal committed before this point is excluded; one after it waits for the
   commit, and its push sets the member ``unsubscribed``.
The snapshot time, the members and the removals are kept in ``CampaignSend`` as evidence.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from comms.campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from comms.suppression.gate import check_many
from comms.suppression.keys import address_key
from comms.suppression.locks import sender_lock
from integrations.mailchimp.client import MailchimpClient, MailchimpError
from integrations.mailchimp.models import CampaignSend
from integrations.mailchimp.sync import audience_for

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """Mailchimp is unavailable or throttling: try the send again after ``delay_ms``."""

    def __init__(self, message: str, delay_ms: int) -> None:
        super().__init__(message)
        self.delay_ms = delay_ms


def _fail(campaign_id: int, detail: str, *, reason: str = "") -> str:
    """The send failed for good: its allowed messages are failed with the error (never left
    queued), and the campaign ends ``failed``; a marketer can retry them."""
    from comms.campaigns.sending import campaign_finish_if_done

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


def _transient(campaign: Campaign, exc: MailchimpError) -> str:
    """Record a transient failure of the send and raise ``RetryLater``, or fail the campaign
    once COMMS_SEND_RETRY_WINDOW has passed since the first failure. A 429, the shared rate
    limit or busy connections use up nothing; an open circuit runs the clock and shows the
    campaign as paused because Mailchimp is unavailable."""
    from integrations import health

    now = timezone.now()
    if exc.throttled or exc.held in ("throttled", "rate_limited", "busy"):
        delay = float(exc.retry_after or 1.0)
        raise RetryLater(exc.message, max(int((delay + health.jitter(delay)) * 1000), 1))
    send = CampaignSend.objects.filter(campaign=campaign).first()
    if send is None:  # before the snapshot nothing was called
        raise RetryLater(exc.message, int(health.backoff(1) * 1000))
    held = exc.held == "provider_unavailable"
    send.failing_since = send.failing_since or now
    if not held:
        send.attempts += 1
        send.last_error = exc.message[:300]
    send.save(update_fields=["failing_since", "attempts", "last_error"])
    if held:
        since = health.state("mailchimp").open_since
        Campaign.objects.filter(pk=campaign.pk, provider_paused_since__isnull=True).update(
            provider_paused_since=dt.datetime.fromtimestamp(since, tz=dt.UTC) if since else now
        )
    window = dt.timedelta(seconds=settings.SEND_RETRY_WINDOW)
    remaining = (send.failing_since + window - now).total_seconds()
    if remaining <= 0:
        logger.warning("Mailchimp campaign %s failed after its retry window: %s", campaign.pk, exc.message)
        return _fail(campaign.pk, f"Mailchimp unavailable: {send.last_error or exc.message}", reason="provider_unavailable")
    delay = float(exc.retry_after or 0.0) if held else health.backoff(send.attempts)
    raise RetryLater(exc.message, max(int(min(delay, remaining + 0.01) * 1000), 1))


def _snapshot(campaign: Campaign) -> None:
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
                delivery.status, delivery.reason, delivery.decided_at = (
                    DeliveryStatus.DENIED,
                    "no_address",
                    now,
                )
                continue
            delivery.address_key = address_key("email", delivery.contact.email)
            candidates.append(delivery)
        sender_lock(d.address_key for d in candidates)
        decisions = check_many(
            contacts=[d.contact for d in candidates], channel="email", purpose=campaign.purpose
        )
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
        CampaignSend.objects.update_or_create(
            campaign=campaign,
            defaults={
                "list_id": audience_for(campaign.brand) or "",
                "snapshot_at": decided_at,
                "members": members,
            },
        )


@contextmanager
def _only_runner(campaign_id: int) -> Iterator[bool]:
    """A session advisory lock so two workers (the tick re-enqueues) never build one campaign twice."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('mailchimp-send'), %s)", [campaign_id])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext('mailchimp-send'), %s)", [campaign_id])


def campaign_send(*, campaign_id: int, client: MailchimpClient | None = None) -> str:
    """Send one due Mailchimp campaign. Raises ``MailchimpError`` for a transient failure (the
    actor retries; every step is safe to repeat); a permanent one fails the campaign."""
    with _only_runner(campaign_id) as acquired:
        if not acquired:
            return "another worker is sending it"
        return _campaign_send(campaign_id, client)


def _campaign_send(campaign_id: int, client: MailchimpClient | None) -> str:
    campaign = Campaign.objects.select_related("brand", "purpose").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != CampaignStatus.SENDING:
        return "not sending"
    existing = CampaignSend.objects.filter(campaign=campaign).first()
    if existing is not None and existing.sent_at is not None:
        return "already sent"
    list_id = audience_for(campaign.brand)
    if list_id is None:
        return _fail(
            campaign_id, f"brand {campaign.brand.key} has no Mailchimp audience (MAILCHIMP_AUDIENCES)"
        )
    client = client or MailchimpClient.from_settings()
    if existing is None or not existing.segment_id:
        _snapshot(campaign)
    send = CampaignSend.objects.get(campaign=campaign)
    try:
        if not send.mailchimp_campaign_id:
            found = list(
                Delivery.objects.filter(campaign=campaign, status=DeliveryStatus.QUEUED)
                .order_by("id")
                .values_list("contact__email", flat=True)
            )
            emails = [e for e in found if e]
            client.members_add_new(list_id, emails)
            send.segment_id = client.segment_create(list_id, f"comms-campaign-{campaign.pk}", emails)
            send.save(update_fields=["segment_id"])
            send.mailchimp_campaign_id = client.campaign_create(
                list_id,
                send.segment_id,
                subject=campaign.subject,
                title=f"{campaign.name} (comms {campaign.pk})",
                from_name=settings.MAILCHIMP_FROM_NAME or campaign.brand.name,
                reply_to=settings.MAILCHIMP_REPLY_TO
                or _address_of(campaign.brand.email_from)
                or "noreply@example.com",
            )
            send.save(update_fields=["mailchimp_campaign_id"])
            client.campaign_set_content(
                send.mailchimp_campaign_id, html=campaign.html or campaign.text, text=campaign.text
            )
        _final_diff_and_send(campaign, send, client)
    except MailchimpError as exc:
        if exc.permanent:
            logger.error("Mailchimp campaign %s failed: %s", campaign_id, exc.message)
            return _fail(campaign_id, exc.message)
        return _transient(campaign, exc)
    from comms.campaigns.sending import campaign_finish_if_done

    Campaign.objects.filter(pk=campaign_id).update(provider_paused_since=None)
    campaign_finish_if_done(campaign_id=campaign_id)
    return "sent"


def _final_diff_and_send(campaign: Campaign, send: CampaignSend, client: MailchimpClient) -> None:
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
        decisions = check_many(
            contacts=[d.contact for d in allowed], channel="email", purpose=campaign.purpose
        )
        now = timezone.now()
        withdrawn = [d for d in allowed if not decisions[d.contact_id].allowed]
        if withdrawn:
            client.segment_change(
                send.list_id, send.segment_id, remove=[d.contact.email or "" for d in withdrawn]
            )
        for delivery in withdrawn:
            decision = decisions[delivery.contact_id]
            delivery.status, delivery.reason = DeliveryStatus.DENIED, decision.reason
            delivery.decision_event_id, delivery.decided_at = decision.event_id, now
        client.campaign_send(send.mailchimp_campaign_id)
        sent_at = timezone.now()
        for delivery in allowed:
            if delivery.status == DeliveryStatus.QUEUED:
                delivery.status, delivery.sent_at = DeliveryStatus.SENT, sent_at
                delivery.provider_id = send.mailchimp_campaign_id
        Delivery.objects.bulk_update(
            allowed,
            ["status", "reason", "decision_event", "decided_at", "sent_at", "provider_id"],
            batch_size=1000,
        )
        send.removed = [[d.pk, d.address_key, d.reason] for d in withdrawn]
        send.final_diff_at, send.sent_at = now, sent_at
        send.save(update_fields=["removed", "final_diff_at", "sent_at"])


def _address_of(from_header: str) -> str:
    if "<" in from_header and from_header.endswith(">"):
        return from_header.rsplit("<", 1)[1][:-1]
    return from_header
