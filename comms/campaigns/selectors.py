"""Reads for campaigns: counts by status and reason, previews, deliveries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db.models import Count, QuerySet

from comms.campaigns.audience import audience_queryset
from comms.campaigns.models import AudiencePreview, Campaign, Delivery
from comms.contacts.models import Contact
from comms.errors import NotFound
from comms.suppression.gate import ALLOWED_REASONS, audience_counts


def campaign_get(*, campaign_id: int) -> Campaign:
    campaign = Campaign.objects.select_related("brand", "purpose").filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


@dataclass
class CampaignCounts:
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, dict[str, int]] = field(default_factory=dict)


def campaign_counts(*, campaign: Campaign) -> CampaignCounts:
    counts = CampaignCounts()
    rows = Delivery.objects.filter(campaign=campaign).values("status", "reason").annotate(n=Count("id"))
    for row in rows:
        counts.total += row["n"]
        counts.by_status[row["status"]] = counts.by_status.get(row["status"], 0) + row["n"]
        reasons = counts.by_reason.setdefault(row["status"], {})
        reasons[row["reason"] or "-"] = reasons.get(row["reason"] or "-", 0) + row["n"]
    return counts


@dataclass
class Preview:
    audience: int
    would_send: int
    would_deny: dict[str, int]


def preview_of(counts: Mapping[str, int]) -> Preview:
    """The gate's counts by reason as a preview: the allowed bases summed, denials by reason."""
    allowed = sum(n for reason, n in counts.items() if reason in ALLOWED_REASONS)
    denied = Counter({reason: n for reason, n in counts.items() if reason not in ALLOWED_REASONS})
    return Preview(audience=sum(counts.values()), would_send=allowed, would_deny=dict(denied.most_common()))


def campaign_audience(*, campaign: Campaign) -> QuerySet[Contact]:
    return audience_queryset(brand_id=campaign.brand_id, channel=campaign.channel, audience=campaign.audience)


def campaign_preview(*, campaign: Campaign) -> Preview:
    """Audience size and the gate's would-be decisions, without sending or writing anything:
    one set-based statement over the audience, the consent state and the suppressions."""
    contacts = campaign_audience(campaign=campaign)
    return preview_of(audience_counts(contacts=contacts, channel=campaign.channel, purpose=campaign.purpose))


def audience_preview_get(*, campaign: Campaign, preview_id: int) -> AudiencePreview:
    preview = AudiencePreview.objects.filter(campaign=campaign, pk=preview_id).first()
    if preview is None:
        raise NotFound(f"preview {preview_id} of campaign {campaign.pk} not found")
    return preview


def audience_previews(*, campaign: Campaign) -> QuerySet[AudiencePreview]:
    """The campaign's preview jobs, newest first."""
    return AudiencePreview.objects.filter(campaign=campaign).order_by("-created_at", "-id")


def audience_preview_latest(*, campaign: Campaign) -> AudiencePreview | None:
    return audience_previews(campaign=campaign).first()


def campaign_deliveries(
    *, campaign: Campaign, status: str | None = None, reason: str | None = None
) -> QuerySet[Delivery]:
    deliveries = Delivery.objects.filter(campaign=campaign).order_by("id")
    if status:
        deliveries = deliveries.filter(status=status)
    if reason:
        deliveries = deliveries.filter(reason=reason)
    return deliveries
