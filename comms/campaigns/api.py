"""Campaigns: create, edit, preview, schedule, send now, pause, resume, cancel, deliveries."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

from comms.accounts.models import Role
from comms.auth import principal_name, require_role
from comms.campaigns import previews, selectors, services
from comms.campaigns.models import AudiencePreview, Campaign, Delivery
from comms.campaigns.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    ChannelIn,
    DeliveryFilter,
    DeliveryOut,
    FreshnessOut,
    PreviewJobOut,
    PreviewOut,
    RefreshIn,
    RefreshOut,
    ScheduleIn,
)
from comms.contacts.services import brand_get
from comms.errors import NotFound
from comms.schemas import Id, responses
from comms.suppression.models import Purpose
from comms.suppression.selectors import FreshnessPreview
from comms.suppression.selectors import freshness_preview as freshness_selector

router = Router(tags=["campaigns"])
MARKETERS = (Role.MARKETER, Role.SYSTEM, Role.DPO)


def _out(campaign: Campaign) -> Campaign:
    fresh = selectors.campaign_get(campaign_id=campaign.pk)
    fresh.counts = selectors.campaign_counts(campaign=fresh)  # type: ignore[attr-defined]
    return fresh


def _input(payload: CampaignIn | CampaignPatch) -> services.CampaignInput:
    data = services.CampaignInput()
    for name, value in payload.model_dump(exclude_unset=True).items():
        if hasattr(data, name):
            setattr(data, name, value)
    return data


@router.post("/campaigns", response=responses({201: CampaignOut}))
@require_role(*MARKETERS)
def create_campaign(request: HttpRequest, payload: CampaignIn) -> Status[Any]:
    data = _input(payload)
    campaign = services.campaign_create(
        brand=brand_get(payload.brand), data=data, created_by=principal_name(request)
    )
    return Status(201, _out(campaign))


@router.get("/campaigns", response=responses({200: list[CampaignOut]}))
@paginate(LimitOffsetPagination)
def list_campaigns(request: HttpRequest, status: str | None = None) -> QuerySet[Campaign]:
    campaigns = Campaign.objects.select_related("brand", "purpose").order_by("-id")
    return campaigns.filter(status=status) if status else campaigns


@router.get("/campaigns/{campaign_id}", response=responses({200: CampaignOut}))
def get_campaign(request: HttpRequest, campaign_id: Id) -> Campaign:
    """The campaign with its deliveries counted by status and by reason."""
    return _out(selectors.campaign_get(campaign_id=campaign_id))


@router.patch("/campaigns/{campaign_id}", response=responses({200: CampaignOut}))
@require_role(*MARKETERS)
def patch_campaign(request: HttpRequest, campaign_id: Id, payload: CampaignPatch) -> Campaign:
    campaign = services.campaign_update(
        campaign=selectors.campaign_get(campaign_id=campaign_id), data=_input(payload)
    )
    return _out(campaign)


@router.post("/campaigns/{campaign_id}/preview", response=responses({200: PreviewOut, 202: PreviewJobOut}))
@require_role(*MARKETERS)
def preview_campaign(request: HttpRequest, campaign_id: Id) -> Status[Any]:
    """Audience size and would-be denials by reason; sends nothing. Up to
    COMMS_PREVIEW_INLINE_MAX contacts: 200 with the preview. Above: 202 with a preview job;
    follow its progress at ``GET /campaigns/{id}/previews/{preview_id}``."""
    result = previews.campaign_preview_request(
        campaign=selectors.campaign_get(campaign_id=campaign_id), requested_by=principal_name(request)
    )
    return Status(202, result) if isinstance(result, AudiencePreview) else Status(200, result)


@router.get("/campaigns/{campaign_id}/previews", response=responses({200: list[PreviewJobOut]}))
@paginate(LimitOffsetPagination)
@require_role(*MARKETERS)
def list_previews(request: HttpRequest, campaign_id: Id) -> QuerySet[AudiencePreview]:
    """The campaign's preview jobs, newest first."""
    return selectors.audience_previews(campaign=selectors.campaign_get(campaign_id=campaign_id))


@router.get("/campaigns/{campaign_id}/previews/{preview_id}", response=responses({200: PreviewJobOut}))
@require_role(*MARKETERS)
def get_preview(request: HttpRequest, campaign_id: Id, preview_id: Id) -> AudiencePreview:
    """A preview job: status, progress and the counts decided so far (final when done)."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    return selectors.audience_preview_get(campaign=campaign, preview_id=preview_id)


def _freshness(preview: FreshnessPreview) -> dict[str, Any]:
    return {
        "purpose_id": preview.purpose_id,
        "days": preview.days,
        "until": preview.until,
        "falling_out": preview.falling_out,
        "falling_out_count": {channel: len(ids) for channel, ids in preview.falling_out.items()},
        "already_out": preview.already_out,
    }


def _purpose(purpose_id: int) -> Purpose:
    purpose = Purpose.objects.select_related("brand").filter(pk=purpose_id).first()
    if purpose is None:
        raise NotFound(f"purpose {purpose_id} not found")
    return purpose


@router.post(
    "/purposes/{purpose_id}/freshness-preview", response=responses({200: FreshnessOut}), tags=["purposes"]
)
@require_role(*MARKETERS)
def freshness_preview(
    request: HttpRequest, purpose_id: Id, days: int = 30, channel: ChannelIn | None = None
) -> dict[str, Any]:
    """Who falls out of the purpose within ``days`` (allowed now, denied then as
    ``stale_notice`` or ``consent_expired``), and how many are out already. Writes nothing."""
    preview = freshness_selector(purpose=_purpose(purpose_id), days=days, channel=channel)
    return _freshness(preview)


@router.post(
    "/purposes/{purpose_id}/refresh-campaign", response=responses({201: RefreshOut}), tags=["purposes"]
)
@require_role(*MARKETERS)
def refresh_campaign(request: HttpRequest, purpose_id: Id, payload: RefreshIn) -> Status[Any]:
    """A draft campaign of the purpose to the people who fall out within ``days``, asking them
    to renew their consent (link to the preference centre). Schedule it like any campaign: it
    is sent through the gate."""
    data = services.CampaignInput(
        name=payload.name,
        channel=payload.channel,
        subject=payload.subject,
        html=payload.html,
        text=payload.text,
        sms_max_segments=payload.sms_max_segments,
    )
    campaign, preview = services.campaign_create_refresh(
        purpose=_purpose(purpose_id), days=payload.days, data=data, created_by=principal_name(request)
    )
    return Status(201, {"campaign": _out(campaign), "freshness": _freshness(preview)})


@router.post("/campaigns/{campaign_id}/schedule", response=responses({200: CampaignOut}))
@require_role(*MARKETERS)
def schedule_campaign(request: HttpRequest, campaign_id: Id, payload: ScheduleIn) -> Campaign:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    return _out(services.campaign_schedule(campaign=campaign, send_at=payload.send_at))


@router.post("/campaigns/{campaign_id}/send", response=responses({200: CampaignOut}))
@require_role(*MARKETERS)
def send_campaign(request: HttpRequest, campaign_id: Id) -> Campaign:
    return _out(services.campaign_send_now(campaign=selectors.campaign_get(campaign_id=campaign_id)))


@router.post("/campaigns/{campaign_id}/pause", response=responses({200: CampaignOut}))
@require_role(*MARKETERS)
def pause_campaign(request: HttpRequest, campaign_id: Id) -> Campaign:
    return _out(services.campaign_pause(campaign=selectors.campaign_get(campaign_id=campaign_id)))


@router.post("/campaigns/{campaign_id}/resume", response=responses({200: CampaignOut}))
@require_role(*MARKETERS)
def resume_campaign(request: HttpRequest, campaign_id: Id) -> Campaign:
    return _out(services.campaign_resume(campaign=selectors.campaign_get(campaign_id=campaign_id)))


@router.post("/campaigns/{campaign_id}/cancel", response=responses({200: CampaignOut}))
@require_role(*MARKETERS)
def cancel_campaign(request: HttpRequest, campaign_id: Id) -> Campaign:
    return _out(services.campaign_cancel(campaign=selectors.campaign_get(campaign_id=campaign_id)))


@router.get("/campaigns/{campaign_id}/deliveries", response=responses({200: list[DeliveryOut]}))
@paginate(LimitOffsetPagination)
def list_deliveries(
    request: HttpRequest, campaign_id: Id, filters: Query[DeliveryFilter]
) -> QuerySet[Delivery]:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    return selectors.campaign_deliveries(campaign=campaign, status=filters.status, reason=filters.reason)
