import datetime as dt
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import AwareDatetime

from comms.campaigns.models import AudiencePreview, Campaign
from comms.campaigns.selectors import preview_of
from comms.schemas import Str40, Str60, Str200, Str20000

ChannelIn = Literal["email", "sms"]


class CampaignIn(Schema):
    brand: Str40
    name: Str200
    channel: ChannelIn
    provider: Literal["lifevision", "mailchimp"] = "lifevision"
    purpose: Str60
    audience: dict[str, Any] = Field(
        default_factory=dict,
        description="filters: kinds, centres, tags, last_visit_before/after, age_min/max",
    )
    subject: Str200 = ""
    html: Str20000 = ""
    text: Str20000
    sms_max_segments: int = Field(default=2, ge=1, le=10)
    send_at: AwareDatetime | None = None


class CampaignPatch(Schema):
    name: Str200 | None = None
    purpose: Str60 | None = None
    audience: dict[str, Any] | None = None
    subject: Str200 | None = None
    html: Str20000 | None = None
    text: Str20000 | None = None
    sms_max_segments: int | None = Field(default=None, ge=1, le=10)
    send_at: AwareDatetime | None = None


class ScheduleIn(Schema):
    send_at: AwareDatetime | None = None


class CountsOut(Schema):
    total: int
    by_status: dict[str, int]
    by_reason: dict[str, dict[str, int]]


class CampaignOut(Schema):
    id: int
    brand: str
    name: str
    channel: str
    provider: str
    purpose: str
    audience: dict[str, Any]
    subject: str
    html: str
    text: str
    sms_max_segments: int
    send_at: dt.datetime | None
    status: str
    created_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    counts: CountsOut | None = None

    @staticmethod
    def resolve_brand(obj: Campaign) -> str:
        return obj.brand.key

    @staticmethod
    def resolve_purpose(obj: Campaign) -> str:
        return obj.purpose.key


class PreviewOut(Schema):
    audience: int
    would_send: int
    would_deny: dict[str, int]


class PreviewJobOut(Schema):
    """A preview too large to decide inside the request, decided by a background job."""

    id: int
    campaign_id: int
    status: Literal["queued", "running", "done", "failed"]
    total: int = Field(description="audience size (counted when requested and when the run starts)")
    decided: int = Field(description="contacts decided so far")
    progress: float = Field(ge=0, le=1, description="decided / total; 1 when done")
    audience: int
    would_send: int = Field(description="allowed so far (final when done)")
    would_deny: dict[str, int] = Field(description="denials by reason so far (final when done)")
    error: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @staticmethod
    def resolve_audience(obj: AudiencePreview) -> int:
        return obj.total

    @staticmethod
    def resolve_would_send(obj: AudiencePreview) -> int:
        return preview_of(obj.counts).would_send

    @staticmethod
    def resolve_would_deny(obj: AudiencePreview) -> dict[str, int]:
        return preview_of(obj.counts).would_deny


class DeliveryOut(Schema):
    id: int
    contact_id: int
    channel: str
    status: str
    reason: str
    decision_event_id: int | None
    decided_at: dt.datetime | None
    external_id: str
    provider_id: str
    attempts: int
    last_error: str
    deferred_until: dt.datetime | None
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None

    @staticmethod
    def resolve_external_id(obj: Any) -> str:
        return str(obj.external_id)


class DeliveryFilter(Schema):
    status: (
        Literal["queued", "denied", "deferred", "sent", "failed", "delivered", "bounced", "cancelled"] | None
    ) = None
    reason: Str60 | None = None


class FreshnessOut(Schema):
    purpose_id: int
    days: int
    until: dt.datetime
    falling_out: dict[str, list[int]] = Field(description="channel -> ids of contacts who fall out")
    falling_out_count: dict[str, int]
    already_out: dict[str, dict[str, int]] = Field(description="channel -> reason -> count")


class RefreshIn(Schema):
    days: int = Field(ge=0, le=3650)
    channel: ChannelIn
    name: Str200 | None = None
    subject: Str200 = ""
    html: Str20000 = ""
    text: Str20000
    sms_max_segments: int = Field(default=2, ge=1, le=10)


class RefreshOut(Schema):
    campaign: CampaignOut
    freshness: FreshnessOut
