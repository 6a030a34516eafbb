"""Campaigns: create, edit, preview, schedule, send now, pause, resume, cancel, deliveries."""

from typing import Annotated, Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate
from pydantic import BeforeValidator, Field

from comms.accounts.models import Role
from comms.auth import principal_name, require_role
from comms.campaigns import previews, selectors, services
from comms.campaigns.models import AudiencePreview, Campaign, Delivery
from comms.campaigns.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    CampaignStatusIn,
    ChannelIn,
    DeliveryFilter,
    DeliveryOut,
    FreshnessOut,
    PreviewJobOut,
    PreviewOut,
    RefreshIn,
    RefreshOut,
    RetryFailedOut,
    ScheduleIn,
)
from comms.errors import NotFound
from comms.references import brand_named, purpose_named
from comms.schemas import Pagination, PathId, responses, whole_number
from comms.suppression.models import Purpose
from comms.suppression.selectors import FreshnessPreview
from comms.suppression.selectors import freshness_preview as freshness_selector

router = Router(tags=["campaigns"])
Days = Annotated[int, Field(ge=0, le=3650), BeforeValidator(whole_number)]
MARKETERS = (Role.MARKETER, Role.SYSTEM, Role.DPO)


def _out(campaign: Campaign) -> Campaign:
    fresh = selectors.campaign_get(campaign_id=campaign.pk)
    fresh.counts = selectors.campaign_counts(campaign=fresh)  # type: ignore[attr-defined]
    fresh.failures = selectors.campaign_failures(campaign_id=fresh.pk)  # type: ignore[attr-defined]
    return fresh


def _input(payload: CampaignIn | CampaignPatch) -> services.CampaignInput:
    data = services.CampaignInput()
    for name, value in payload.model_dump(exclude_unset=True).items():
        if hasattr(data, name):
            setattr(data, name, value)
    if payload.audience is not None:  # a null filter is one not given
        data.audience = payload.audience.model_dump(exclude_none=True)
    return data


@router.post("/campaigns", response=responses({201: CampaignOut}), summary="Create a campaign")
@require_role(*MARKETERS)
def create_campaign(request: HttpRequest, payload: CampaignIn) -> Status[Any]:
    """A draft campaign: brand, channel, provider, purpose, audience filters and content.
    Nothing is sent until it is scheduled or sent now; every message then passes the gate.
    409 when the purpose does not allow the channel, an email has no subject, the text names
    an unknown placeholder or the SMS with its opt-out line is longer than `sms_max_segments`,
    an audience filter names a centre or tag nobody has."""
    brand = brand_named(payload.brand)
    purpose_named(brand, payload.purpose)
    data = _input(payload)
    campaign = services.campaign_create(brand=brand, data=data, created_by=principal_name(request))
    return Status(201, _out(campaign))


@router.get("/campaigns", response=responses({200: list[CampaignOut]}), summary="List campaigns")
@paginate(Pagination)
def list_campaigns(request: HttpRequest, status: CampaignStatusIn | None = None) -> QuerySet[Campaign]:
    """Campaigns, newest first, optionally in one status (without counts: get one for those)."""
    campaigns = Campaign.objects.select_related("brand", "purpose").order_by("-id")
    return campaigns.filter(status=status) if status else campaigns


@router.get("/campaigns/{campaign_id}", response=responses({200: CampaignOut}), summary="Get a campaign")
def get_campaign(request: HttpRequest, campaign_id: PathId) -> Campaign:
    """The campaign with its deliveries counted by status and by reason."""
    return _out(selectors.campaign_get(campaign_id=campaign_id))


@router.patch("/campaigns/{campaign_id}", response=responses({200: CampaignOut}), summary="Change a campaign")
@require_role(*MARKETERS)
def patch_campaign(request: HttpRequest, campaign_id: PathId, payload: CampaignPatch) -> Campaign:
    """Change the given fields of a draft or scheduled campaign that has not started sending
    (else 409). Unknown fields are refused (422), so are brand, channel and provider."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    if payload.purpose is not None:
        purpose_named(campaign.brand, payload.purpose)
    campaign = services.campaign_update(campaign=campaign, data=_input(payload))
    return _out(campaign)


@router.post(
    "/campaigns/{campaign_id}/preview",
    response=responses({200: PreviewOut, 202: PreviewJobOut}),
    summary="Preview a campaign's audience",
)
@require_role(*MARKETERS)
def preview_campaign(request: HttpRequest, campaign_id: PathId) -> Status[Any]:
    """Audience size and would-be denials by reason; sends nothing. Up to
    COMMS_PREVIEW_INLINE_MAX contacts: 200 with the preview. Above: 202 with a preview job;
    follow its progress at ``GET /campaigns/{id}/previews/{preview_id}``."""
    result = previews.campaign_preview_request(
        campaign=selectors.campaign_get(campaign_id=campaign_id), requested_by=principal_name(request)
    )
    return Status(202, result) if isinstance(result, AudiencePreview) else Status(200, result)


@router.get(
    "/campaigns/{campaign_id}/previews",
    response=responses({200: list[PreviewJobOut]}),
    summary="List preview jobs",
)
@paginate(Pagination)
@require_role(*MARKETERS)
def list_previews(request: HttpRequest, campaign_id: PathId) -> QuerySet[AudiencePreview]:
    """The campaign's preview jobs, newest first."""
    return selectors.audience_previews(campaign=selectors.campaign_get(campaign_id=campaign_id))


@router.get(
    "/campaigns/{campaign_id}/previews/{preview_id}",
    response=responses({200: PreviewJobOut}),
    summary="Get a preview job",
)
@require_role(*MARKETERS)
def get_preview(request: HttpRequest, campaign_id: PathId, preview_id: PathId) -> AudiencePreview:
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
    "/purposes/{purpose_id}/freshness-preview",
    response=responses({200: FreshnessOut}),
    tags=["purposes"],
    summary="Preview who falls out of a purpose",
)
@require_role(*MARKETERS)
def freshness_preview(
    request: HttpRequest, purpose_id: PathId, days: Days = 30, channel: ChannelIn | None = None
) -> dict[str, Any]:
    """Who falls out of the purpose within `days` (0-3650; allowed now, denied then as
    `stale_notice` or `consent_expired`), and how many are out already, per channel (409 for
    a channel the purpose does not have). Writes nothing."""
    preview = freshness_selector(purpose=_purpose(purpose_id), days=days, channel=channel)
    return _freshness(preview)


@router.post(
    "/purposes/{purpose_id}/refresh-campaign",
    response=responses({201: RefreshOut}),
    tags=["purposes"],
    summary="Create a consent-refresh campaign",
)
@require_role(*MARKETERS)
def refresh_campaign(request: HttpRequest, purpose_id: PathId, payload: RefreshIn) -> Status[Any]:
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


@router.post(
    "/campaigns/{campaign_id}/schedule", response=responses({200: CampaignOut}), summary="Schedule a campaign"
)
@require_role(*MARKETERS)
def schedule_campaign(request: HttpRequest, campaign_id: PathId, payload: ScheduleIn) -> Campaign:
    """Schedule a draft (or move a scheduled campaign) to `send_at`, which must lie in the
    future; the scheduler sends it then. 409 for a campaign in another status."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    return _out(services.campaign_schedule(campaign=campaign, send_at=payload.send_at))


@router.post(
    "/campaigns/{campaign_id}/send", response=responses({200: CampaignOut}), summary="Send a campaign now"
)
@require_role(*MARKETERS)
def send_campaign(request: HttpRequest, campaign_id: PathId) -> Campaign:
    """Start sending a draft or scheduled campaign now; each message passes the gate. 409 for
    a campaign in another status."""
    return _out(services.campaign_send_now(campaign=selectors.campaign_get(campaign_id=campaign_id)))


@router.post(
    "/campaigns/{campaign_id}/pause", response=responses({200: CampaignOut}), summary="Pause a campaign"
)
@require_role(*MARKETERS)
def pause_campaign(request: HttpRequest, campaign_id: PathId) -> Campaign:
    """Stop handing messages to the provider; resume sends only what has not been sent. 409
    for a campaign that is not sending or scheduled."""
    return _out(services.campaign_pause(campaign=selectors.campaign_get(campaign_id=campaign_id)))


@router.post(
    "/campaigns/{campaign_id}/resume", response=responses({200: CampaignOut}), summary="Resume a campaign"
)
@require_role(*MARKETERS)
def resume_campaign(request: HttpRequest, campaign_id: PathId) -> Campaign:
    """Resume a paused campaign: only what has not been sent goes out. 409 when not paused."""
    return _out(services.campaign_resume(campaign=selectors.campaign_get(campaign_id=campaign_id)))


@router.post(
    "/campaigns/{campaign_id}/cancel", response=responses({200: CampaignOut}), summary="Cancel a campaign"
)
@require_role(*MARKETERS)
def cancel_campaign(request: HttpRequest, campaign_id: PathId) -> Campaign:
    """Cancel a campaign: what is still queued is never sent. 409 when it has finished."""
    return _out(services.campaign_cancel(campaign=selectors.campaign_get(campaign_id=campaign_id)))


@router.post(
    "/campaigns/{campaign_id}/retry-failed",
    response=responses({200: RetryFailedOut}),
    summary="Retry a campaign's failed messages",
)
@require_role(*MARKETERS)
def retry_failed(request: HttpRequest, campaign_id: PathId) -> dict[str, Any]:
    """Queue again the allowed messages that never reached the provider (their retry window ran
    out, or the provider refused the request); each passes the gate again and keeps its own id,
    so nobody receives one twice. 409 when there is nothing to retry."""
    campaign, queued = services.campaign_retry_failed(
        campaign=selectors.campaign_get(campaign_id=campaign_id)
    )
    return {"campaign": _out(campaign), "queued": queued}


@router.get(
    "/campaigns/{campaign_id}/deliveries",
    response=responses({200: list[DeliveryOut]}),
    summary="List deliveries",
)
@paginate(Pagination)
def list_deliveries(
    request: HttpRequest, campaign_id: PathId, filters: Query[DeliveryFilter]
) -> QuerySet[Delivery]:
    """One row per message of the campaign: status, the gate's reason and the ledger event it
    rested on, the provider's id and times."""
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    return selectors.campaign_deliveries(campaign=campaign, status=filters.status, reason=filters.reason)
