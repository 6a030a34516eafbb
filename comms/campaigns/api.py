"""Campaigns: create, edit, preview, schedule, send now, pause, resume, cancel, deliveries."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

from comms.accounts.models import Role
from comms.auth import principal_name, require_role
from comms.campaigns import selectors, services
from comms.campaigns.models import Campaign, Delivery
from comms.campaigns.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    DeliveryFilter,
    DeliveryOut,
    PreviewOut,
    ScheduleIn,
)
from comms.contacts.services import brand_get
from comms.schemas import Id, responses

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


@router.post("/campaigns/{campaign_id}/preview", response=responses({200: PreviewOut}))
@require_role(*MARKETERS)
def preview_campaign(request: HttpRequest, campaign_id: Id) -> Any:
    """Audience size and would-be denials by reason; sends and writes nothing."""
    return selectors.campaign_preview(campaign=selectors.campaign_get(campaign_id=campaign_id))


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
