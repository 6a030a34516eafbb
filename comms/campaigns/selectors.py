"""Reads for campaigns: counts by status and reason, previews, deliveries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db.models import Case, CharField, Count, QuerySet, Value, When
from django.db.models.functions import Concat, Substr

from comms.campaigns.audience import audience_queryset
from comms.campaigns.models import AudiencePreview, Campaign, CampaignStatus, Delivery, DeliveryStatus
from comms.contacts.models import Contact
from comms.errors import NotFound
from comms.suppression.gate import ALLOWED_REASONS, audience_counts


def campaign_get(*, campaign_id: int) -> Campaign:
    campaign = Campaign.objects.select_related("brand", "purpose").filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def campaign_state(campaign: Campaign) -> str:
    """The campaign's status as a marketer reads it: a sending campaign whose provider is down
    reads "paused — provider unavailable" (it goes on by itself when the provider answers)."""
    if campaign.status == CampaignStatus.SENDING and campaign.provider_paused_since is not None:
        return "paused — provider unavailable"
    return campaign.get_status_display().lower()


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


@dataclass
class CampaignFailures:
    """Allowed messages that never reached the provider, by why (``provider_unavailable``: its
    retry window ran out; ``rejected:<code>``: the provider refused the recipient;
    ``provider_error``: the provider refused the request for good)."""

    count: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


def failed_not_handed_over(*, campaign_id: int) -> QuerySet[Delivery]:
    """Failed deliveries the provider never accepted (a delivery report's failure comes after a
    hand-off and keeps ``sent_at``)."""
    return Delivery.objects.filter(campaign_id=campaign_id, status=DeliveryStatus.FAILED, sent_at__isnull=True)


def campaign_failures(*, campaign_id: int) -> CampaignFailures:
    why = Case(
        When(reason="provider_unavailable", then=Value("provider_unavailable")),
        When(
            last_error__startswith="rejected: ",
            then=Concat(Value("rejected:"), Substr("last_error", len("rejected: ") + 1)),
        ),
        default=Value("provider_error"),
        output_field=CharField(),
    )
    rows = (
        failed_not_handed_over(campaign_id=campaign_id)
        .annotate(why=why)
        .values("why")
        .annotate(n=Count("id"))
        .order_by("-n", "why")
    )
    failures = CampaignFailures()
    for row in rows:
        failures.count += row["n"]
        failures.by_reason[row["why"]] = row["n"]
    return failures
