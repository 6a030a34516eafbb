"""Campaign writes: create, edit, schedule, start, pause, resume, cancel. Sending itself is in
``comms.campaigns.sending``; actors only carry ids between the two."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from comms.campaigns import providers
from comms.campaigns.audience import audience_clean, audience_queryset
from comms.campaigns.content import check_template, render_sample, sms_length, sms_opt_out
from comms.campaigns.finish import campaign_finish_if_done
from comms.campaigns.models import (
    Campaign,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    FollowUpRule,
    Provider,
)
from comms.campaigns.providers import SegmentSender
from comms.campaigns.selectors import failed_not_handed_over
from comms.contacts.models import Brand
from comms.core import jobs
from comms.errors import Conflict, InvalidInput
from comms.links import short_url
from comms.suppression.models import Purpose
from comms.suppression.selectors import FreshnessPreview, freshness_preview

EDITABLE = {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED}
FINISHED = {
    CampaignStatus.SENT,
    CampaignStatus.SENT_WITH_FAILURES,
    CampaignStatus.CANCELLED,
    CampaignStatus.FAILED,
}
RETRYABLE = {CampaignStatus.SENDING, CampaignStatus.SENT_WITH_FAILURES, CampaignStatus.FAILED}


@dataclass
class CampaignInput:
    name: str | None = None
    channel: str | None = None
    provider: str | None = None
    purpose: str | None = None
    audience: dict[str, Any] | None = None
    subject: str | None = None
    html: str | None = None
    text: str | None = None
    sms_max_segments: int | None = None
    send_at: dt.datetime | None = None


def _check_content(campaign: Campaign) -> None:
    for field in ("subject", "html", "text"):
        check_template(getattr(campaign, field), field=field)
    if not campaign.text.strip():
        raise InvalidInput("text", "a campaign needs its message text")
    if campaign.channel == "email":
        if not campaign.subject.strip():
            raise InvalidInput("subject", "an email campaign needs a subject")
        return
    if campaign.sms_max_segments < 1 or campaign.sms_max_segments > 10:
        raise InvalidInput("sms_max_segments", "must be between 1 and 10")
    # The opt-out line the send path will add: the same sender, a link on this server's address.
    sender = settings.LIFEVISION_SMS_SENDER or campaign.brand.sms_sender or "comms"
    full = f"{render_sample(campaign.text)}\n{sms_opt_out(sender, short_url('X' * 10))}"
    length = sms_length(full)
    if length.segments > campaign.sms_max_segments:
        raise InvalidInput(
            "text",
            f"with the opt-out line and 20-character names the SMS is {length.segments} segments "
            f"({length.units} {length.encoding.upper()} characters); the limit is {campaign.sms_max_segments}",
        )


def _apply(campaign: Campaign, data: CampaignInput) -> None:
    if data.name is not None:
        if not data.name.strip():
            raise InvalidInput("name", "cannot be empty")
        campaign.name = data.name.strip()
    if data.channel is not None:
        if data.channel not in ("email", "sms"):
            raise InvalidInput("channel", "must be email or sms")
        campaign.channel = data.channel
    if data.provider is not None:
        if data.provider not in Provider.values:
            raise InvalidInput("provider", f"must be one of {', '.join(Provider.values)}")
        campaign.provider = data.provider
    if data.purpose is not None:
        purpose = Purpose.objects.filter(brand=campaign.brand, key=data.purpose).first()
        if purpose is None:
            raise InvalidInput("purpose", f"unknown purpose {data.purpose!r} for brand {campaign.brand.key}")
        campaign.purpose = purpose
    if data.audience is not None:
        campaign.audience = audience_clean(data.audience, brand=campaign.brand)
    for field in ("subject", "html", "text"):
        value = getattr(data, field)
        if value is not None:
            setattr(campaign, field, value)
    if data.sms_max_segments is not None:
        campaign.sms_max_segments = data.sms_max_segments
    if data.send_at is not None:
        campaign.send_at = data.send_at
    if not campaign.purpose_id:
        raise InvalidInput("purpose", "a campaign needs a purpose")
    if not campaign.purpose.allows_channel(campaign.channel):
        raise InvalidInput("channel", f"purpose {campaign.purpose.key!r} does not allow {campaign.channel}")
    if campaign.provider == Provider.MAILCHIMP:
        if campaign.channel != "email":
            raise InvalidInput("provider", "Mailchimp sends email newsletters only; use lifevision for SMS")
        if not settings.MAILCHIMP_API_KEY or campaign.brand.key not in settings.MAILCHIMP_AUDIENCES:
            raise InvalidInput("provider", f"brand {campaign.brand.key} has no Mailchimp audience configured")
    _check_content(campaign)


def campaign_validate(*, brand: Brand, data: CampaignInput, existing: Campaign | None = None) -> None:
    """Check a campaign's input without saving it (the admin form uses this)."""
    if existing is not None:
        probe = Campaign.objects.select_related("brand", "purpose").get(pk=existing.pk)
    else:
        if not data.purpose:
            raise InvalidInput("purpose", "a campaign needs a purpose")
        probe = Campaign(brand=brand, text="", provider=Provider.LIFEVISION)
    _apply(probe, data)


def campaign_create(*, brand: Brand, data: CampaignInput, created_by: str = "") -> Campaign:
    if not data.purpose:
        raise InvalidInput("purpose", "a campaign needs a purpose")
    if not data.channel:
        raise InvalidInput("channel", "is required")
    campaign = Campaign(brand=brand, created_by=created_by[:100], text="")
    campaign.provider = Provider.LIFEVISION
    _apply(campaign, data)
    campaign.save()
    return campaign


def campaign_create_refresh(
    *, purpose: Purpose, days: int, data: CampaignInput, created_by: str = ""
) -> tuple[Campaign, FreshnessPreview]:
    """A draft campaign asking the people whose consent to ``purpose`` falls out within
    ``days`` (on ``data.channel``) to renew it. It is an ordinary campaign of that purpose,
    scheduled and sent through the gate like any other: whoever withdraws or has fallen out
    by the time it is sent is denied."""
    if not data.channel:
        raise InvalidInput("channel", "is required")
    preview = freshness_preview(purpose=purpose, days=days, channel=data.channel)
    ids = preview.contact_ids(data.channel)
    if not ids:
        raise InvalidInput("days", f"nobody's consent to {purpose.key!r} falls out within {days} days")
    data.purpose = purpose.key
    data.audience = {"contact_ids": ids}
    data.name = data.name or f"Consent refresh: {purpose.name} ({timezone.localdate():%Y-%m-%d})"
    return campaign_create(brand=purpose.brand, data=data, created_by=created_by), preview


def campaign_update(*, campaign: Campaign, data: CampaignInput) -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().select_related("brand", "purpose").get(pk=campaign.pk)
        if locked.status not in EDITABLE or locked.started_at is not None:
            raise Conflict(f"a {locked.status} campaign that has started sending cannot be edited")
        _apply(locked, data)
        locked.save()
    return locked


def _locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().select_related("brand", "purpose").get(pk=campaign.pk)


def campaign_schedule(*, campaign: Campaign, send_at: dt.datetime | None = None) -> Campaign:
    """Schedule for ``send_at`` (or the campaign's own), which must lie in the future."""
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise Conflict(f"a {locked.status} campaign cannot be scheduled")
        when = send_at or locked.send_at
        if when is None:
            raise InvalidInput("send_at", "is required to schedule")
        if when <= timezone.now():
            raise InvalidInput("send_at", "lies in the past; use send now instead")
        _check_content(locked)
        locked.send_at = when
        locked.status = CampaignStatus.SCHEDULED
        locked.save(update_fields=["send_at", "status", "updated_at"])
    return locked


def campaign_send_now(*, campaign: Campaign) -> Campaign:
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status not in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
            raise Conflict(f"a {locked.status} campaign cannot be sent now")
        _check_content(locked)
        locked.send_at = timezone.now()
        locked.status = CampaignStatus.SCHEDULED
        locked.save(update_fields=["send_at", "status", "updated_at"])
        _enqueue_start(locked.pk)
    return locked


def campaign_pause(*, campaign: Campaign) -> Campaign:
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status not in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING):
            raise Conflict(f"a {locked.status} campaign cannot be paused")
        locked.status = CampaignStatus.PAUSED
        locked.save(update_fields=["status", "updated_at"])
    return locked


def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Resume a paused campaign: it sends only what has not been sent."""
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status != CampaignStatus.PAUSED:
            raise Conflict(f"a {locked.status} campaign cannot be resumed")
        if locked.started_at is None:
            due = locked.send_at is None or locked.send_at <= timezone.now()
            locked.status = CampaignStatus.SCHEDULED
            locked.save(update_fields=["status", "updated_at"])
            if due:
                _enqueue_start(locked.pk)
            return locked
        locked.status = CampaignStatus.SENDING
        locked.save(update_fields=["status", "updated_at"])
        enqueue_pending(campaign_id=locked.pk)
    return locked


def campaign_cancel(*, campaign: Campaign) -> Campaign:
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status in FINISHED:
            raise Conflict(f"a {locked.status} campaign cannot be cancelled")
        locked.status = CampaignStatus.CANCELLED
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "finished_at", "updated_at"])
        Delivery.objects.filter(
            campaign=locked, status__in=[DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED]
        ).update(status=DeliveryStatus.CANCELLED, reason="campaign_cancelled")
    return locked


def campaign_retry_failed(*, campaign: Campaign) -> tuple[Campaign, int]:
    """Send again the allowed messages that never reached the provider (failed after their retry
    window, or refused with the whole request): they are queued once more under their own
    ``external_id`` (the provider deduplicates, so nobody receives one twice), and each passes
    the gate again. Messages the provider refused for their recipient, and those it accepted,
    are left as they are. Returns the campaign and how many were queued."""
    with transaction.atomic():
        locked = _locked(campaign)
        if locked.status not in RETRYABLE:
            raise Conflict(f"a {locked.status} campaign has no failed messages to retry")
        retryable = failed_not_handed_over(campaign_id=locked.pk).exclude(last_error__startswith="rejected: ")
        count = retryable.update(
            status=DeliveryStatus.QUEUED,
            reason="",
            failing_since=None,
            deferred_until=None,
            enqueued_at=None,
        )
        if not count:
            raise Conflict("the campaign has no failed messages that can be retried")
        provider = providers.get(locked.provider)
        if isinstance(provider, SegmentSender):
            # A fresh retry window for the send (its segment and campaign ids are reused).
            provider.segment_retry(locked)
        locked.status = CampaignStatus.SENDING
        locked.status_detail = ""
        locked.finished_at = None
        locked.save(update_fields=["status", "status_detail", "finished_at", "updated_at"])
        enqueue_pending(campaign_id=locked.pk)
    return locked, count


def _enqueue_start(campaign_id: int) -> None:
    transaction.on_commit(lambda: jobs.enqueue("start_campaign", campaign_id))


# --- starting a campaign: one Delivery per (campaign, contact, channel), set-based ------------


def campaign_start(*, campaign_id: int) -> int:
    """Create the deliveries for a due campaign and enqueue them. Idempotent: a repeat creates
    nothing new (the unique constraint) and enqueues what is still queued. A follow-up rule's
    campaign has no audience to start: its rule plans each delivery."""
    if FollowUpRule.objects.filter(campaign_id=campaign_id).exists():
        return 0
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING):
            return 0
        if campaign.send_at is not None and campaign.send_at > timezone.now():
            return 0
        audience = audience_queryset(
            brand_id=campaign.brand_id, channel=campaign.channel, audience=campaign.audience
        )
        created = _insert_deliveries(campaign, audience.values_list("id", flat=True))
        campaign.status = CampaignStatus.SENDING
        campaign.started_at = campaign.started_at or timezone.now()
        campaign.save(update_fields=["status", "started_at", "updated_at"])
        enqueue_pending(campaign_id=campaign.pk)
    return created


def _insert_deliveries(campaign: Campaign, contact_ids: Any) -> int:
    if connection.vendor == "postgresql":
        sql, params = contact_ids.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO campaigns_delivery (campaign_id, contact_id, channel, status, reason, external_id,"
                " provider_id, address_key, attempts, last_error, segments, segments_delivered, created_at)"
                " SELECT %s, audience.id, %s, %s, '', gen_random_uuid(), '', '', 0, '', 0, 0, now()"
                f" FROM ({sql}) AS audience ON CONFLICT ON CONSTRAINT delivery_once_per_campaign DO NOTHING",
                [campaign.pk, campaign.channel, DeliveryStatus.QUEUED, *params],
            )
            return int(cursor.rowcount)
    # SQLite (the zero-setup default): the same rows, in chunks.
    created = 0
    ids = list(contact_ids)
    for start in range(0, len(ids), 1000):
        rows = [
            Delivery(campaign=campaign, contact_id=cid, channel=campaign.channel, external_id=uuid.uuid4())
            for cid in ids[start : start + 1000]
        ]
        created += len(Delivery.objects.bulk_create(rows, ignore_conflicts=True))
    return created


def enqueue_pending(*, campaign_id: int, stale_only: bool = False) -> int:
    """Send the ids of a campaign's queued (and due deferred) deliveries to the workers in
    batches, after commit. With ``stale_only``, only those nobody touched for a while."""
    name = Campaign.objects.filter(pk=campaign_id).values_list("provider", flat=True).first()
    provider = providers.get(name) if name else None
    if isinstance(provider, SegmentSender):
        # The provider sends the whole audience in one call, from its own actor (idempotent).
        actor = provider.send_actor
        transaction.on_commit(lambda: jobs.enqueue(actor, campaign_id))
        return 0
    now = timezone.now()
    pending = Delivery.objects.filter(campaign_id=campaign_id).filter(
        Q(status=DeliveryStatus.QUEUED) | Q(status=DeliveryStatus.DEFERRED, deferred_until__lte=now)
    )
    if stale_only:
        cutoff = now - dt.timedelta(seconds=settings.SEND_SWEEP_AFTER_SECONDS)
        pending = pending.filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lte=cutoff))
    ids = list(pending.order_by("id").values_list("id", flat=True))
    pending.update(enqueued_at=now)
    size = settings.SEND_BATCH_SIZE
    batches = [ids[i : i + size] for i in range(0, len(ids), size)]

    def send_all() -> None:
        for batch in batches:
            jobs.enqueue("send_deliveries", batch)

    transaction.on_commit(send_all)
    return len(ids)


def campaigns_tick() -> dict[str, int]:
    """Once a minute: start due campaigns, re-enqueue deliveries the broker may have lost, and
    release deferred ones whose time has come."""
    now = timezone.now()
    started = 0
    for campaign_id in Campaign.objects.filter(status=CampaignStatus.SCHEDULED, send_at__lte=now).values_list(
        "id", flat=True
    ):
        started += 1
        with transaction.atomic():
            _enqueue_start(campaign_id)
    requeued = 0
    for campaign_id in Campaign.objects.filter(status=CampaignStatus.SENDING).values_list("id", flat=True):
        with transaction.atomic():
            count = enqueue_pending(campaign_id=campaign_id, stale_only=True)
        requeued += count
        if not count:
            # No batch is coming to finish it (an empty audience, or a pause that caught the last
            # batch in flight and was resumed): finish it here once nothing is queued or deferred.
            campaign_finish_if_done(campaign_id=campaign_id)
    return {"started": started, "requeued": requeued}
