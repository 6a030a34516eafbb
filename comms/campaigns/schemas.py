import datetime as dt
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import BeforeValidator

from comms.campaigns.audience import MAX_CONTACT_IDS
from comms.campaigns.models import AudiencePreview, Campaign
from comms.campaigns.selectors import campaign_state, preview_of
from comms.contacts.schemas import BrandKey, CentreKey, Kind, TagName
from comms.schemas import (
    Date,
    Id,
    InputSchema,
    Instant,
    Name200,
    Slug,
    Str60,
    Str200,
    Str20000,
    Text20000,
    json_integer,
)

ChannelIn = Literal["email", "sms"]
CampaignStatusIn = Literal[
    "draft", "scheduled", "sending", "sent", "sent_with_failures", "paused", "cancelled", "failed"
]
SmsSegments = Annotated[int, Field(ge=1, le=10), BeforeValidator(json_integer), Field(strict=True)]
Age = Annotated[int, Field(ge=0, le=130), BeforeValidator(json_integer), Field(strict=True)]


class AudienceIn(InputSchema):
    """Filters over the brand's contacts; every filter given must match (null: not given).
    409 for a centre or tag nobody has, and for ``age_max`` below ``age_min``."""

    kinds: list[Kind] | None = Field(default=None, max_length=3, description="member, guest, lead")
    centres: list[CentreKey] | None = Field(
        default=None, max_length=200, description="centre keys of the brand"
    )
    tags: list[TagName] | None = Field(default=None, max_length=200, description="a contact with any of them")
    last_visit_before: Date | None = Field(default=None, description="last visit before this day")
    last_visit_after: Date | None = Field(default=None, description="last visit on or after this day")
    age_min: Age | None = Field(default=None, description="at least this old")
    age_max: Age | None = Field(default=None, description="at most this old")
    contact_ids: list[Id] | None = Field(
        default=None, max_length=MAX_CONTACT_IDS, description="these contacts only"
    )


class CampaignIn(InputSchema):
    brand: BrandKey = Field(description="the brand's key (404 when unknown)")
    name: Name200
    channel: ChannelIn
    provider: Literal["lifevision", "mailchimp"] = Field(
        default="lifevision",
        description="mailchimp: email only, for a brand with a Mailchimp audience (else 409)",
    )
    purpose: Slug = Field(
        description="a purpose key of the brand (404 when unknown) that allows the channel (else 409)"
    )
    audience: AudienceIn | None = Field(default=None, description="default: the whole brand")
    subject: Str200 = Field(default="", description="required for email (else 409)")
    html: Str20000 = ""
    text: Text20000 = Field(
        description="the message; placeholders {first_name}, {last_name}, {brand}, {centre} (another: 409). "
        "An SMS with its opt-out line must fit sms_max_segments (else 409)"
    )
    sms_max_segments: SmsSegments = 2
    send_at: Instant | None = Field(default=None, description="when to send once scheduled")


class CampaignPatch(InputSchema):
    """Only the fields given change (a draft or scheduled campaign that has not started;
    else 409). Brand, channel and provider do not change; unknown fields are refused."""

    name: Name200 | None = None
    purpose: Slug | None = None
    audience: AudienceIn | None = None
    subject: Str200 | None = None
    html: Str20000 | None = None
    text: Text20000 | None = None
    sms_max_segments: SmsSegments | None = None
    send_at: Instant | None = None


class ScheduleIn(InputSchema):
    send_at: Instant | None = Field(
        default=None, description="default: the campaign's own send_at; must lie in the future (else 409)"
    )


class CountsOut(Schema):
    total: int
    by_status: dict[str, int]
    by_reason: dict[str, dict[str, int]]


class FailuresOut(Schema):
    count: int = Field(description="allowed messages that never reached the provider")
    by_reason: dict[str, int] = Field(
        description="provider_unavailable (its retry window ran out), rejected:<code>, provider_error"
    )


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
    status_detail: str
    state: str = Field(description='what a marketer reads, e.g. "sending", "paused — provider unavailable"')
    provider_paused_since: dt.datetime | None = Field(
        description="while the provider is unavailable: since when sending is paused (it resumes by itself)"
    )
    created_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    counts: CountsOut | None = None
    failures: FailuresOut | None = None

    @staticmethod
    def resolve_brand(obj: Campaign) -> str:
        return obj.brand.key

    @staticmethod
    def resolve_state(obj: Campaign) -> str:
        return campaign_state(obj)

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
    reason: Str60 | None = Field(default=None, description="a decision reason, e.g. withdrawn")


class FreshnessOut(Schema):
    purpose_id: int
    days: int
    until: dt.datetime
    falling_out: dict[str, list[int]] = Field(description="channel -> ids of contacts who fall out")
    falling_out_count: dict[str, int]
    already_out: dict[str, dict[str, int]] = Field(description="channel -> reason -> count")


class RefreshIn(InputSchema):
    days: Annotated[int, Field(ge=0, le=3650), BeforeValidator(json_integer), Field(strict=True)] = Field(
        description="who falls out within this many days (409 when nobody does)"
    )
    channel: ChannelIn = Field(description="a channel of the purpose (else 409)")
    name: Name200 | None = None
    subject: Str200 = Field(default="", description="required for email (else 409)")
    html: Str20000 = ""
    text: Text20000
    sms_max_segments: SmsSegments = 2


class RefreshOut(Schema):
    campaign: CampaignOut
    freshness: FreshnessOut


class RetryFailedOut(Schema):
    campaign: CampaignOut
    queued: int = Field(description="failed messages queued again; each passes the gate again")
