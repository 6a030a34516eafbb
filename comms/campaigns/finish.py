"""When a sending campaign is over: asked after every batch, report and stop, and by the tick."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from comms.campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, FollowUpRule
from comms.campaigns.selectors import campaign_failures

logger = logging.getLogger(__name__)

# A delivery in one of these may still be handed over.
PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)


def campaign_finish_if_done(*, campaign_id: int) -> bool:
    """Mark a sending campaign finished once nothing is queued or deferred any more: ``sent``
    when every allowed message was handed over, ``sent_with_failures`` when some never reached
    the provider (the count and reasons in ``status_detail``), ``failed`` when none did. A
    follow-up rule's campaign never finishes: its rule goes on planning messages while active."""
    if FollowUpRule.objects.filter(campaign_id=campaign_id).exists():
        return False
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update().filter(pk=campaign_id, status=CampaignStatus.SENDING).first()
        )
        if campaign is None:
            return False
        if Delivery.objects.filter(campaign_id=campaign_id, status__in=PENDING).exists():
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
