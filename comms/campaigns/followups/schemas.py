import datetime as dt
from typing import Annotated, Literal

from django.conf import settings
from ninja import Field, Schema
from pydantic import BeforeValidator, StringConstraints

from comms.campaigns.followups.handoff import PLANNED
from comms.campaigns.followups.services import MAX_INACTIVE_DAYS, MAX_NAME
from comms.campaigns.models import CampaignStatus, DeliveryStatus, FollowUp, FollowUpRule
from comms.contacts.schemas import BrandKey
from comms.schemas import NOT_BLANK, InputSchema, Slug, Str200, Str20000, Text20000, json_integer

TriggerIn = Literal["trial_visit", "class_booking", "no_visit"]
ChannelIn = Literal["email", "sms"]
RuleName = Annotated[str, StringConstraints(max_length=MAX_NAME, pattern=NOT_BLANK)]
# A follow-up goes out within COMMS_FOLLOWUP_WINDOW_DAYS of its trigger.
DelayHours = Annotated[
    int,
    Field(ge=0, le=settings.FOLLOWUP_WINDOW_DAYS * 24 - 1),
    BeforeValidator(json_integer),
    Field(strict=True),
]
InactiveDays = Annotated[
    int, Field(ge=1, le=MAX_INACTIVE_DAYS), BeforeValidator(json_integer), Field(strict=True)
]
SmsSegments = Annotated[int, Field(ge=1, le=10), BeforeValidator(json_integer), Field(strict=True)]


class _FollowUpRuleIn(InputSchema):
    brand: BrandKey = Field(description="the brand's key (404 when unknown)")
    name: RuleName
    delay_hours: DelayHours = Field(description="after the visit, or after the lapse (no_visit)")
    channel: ChannelIn
    purpose: Slug = Field(description="a purpose key of the brand (404 when unknown) that allows the channel")
    subject: Str200 = Field(default="", description="required for email (else 409)")
    html: Str20000 = ""
    text: Text20000
    sms_max_segments: SmsSegments = 2
    active: bool = True


class VisitFollowUpRuleIn(_FollowUpRuleIn):
    trigger: Literal["trial_visit", "class_booking"]


class NoVisitFollowUpRuleIn(_FollowUpRuleIn):
    trigger: Literal["no_visit"]
    inactive_days: InactiveDays = Field(description="days without a visit before the rule applies")


FollowUpRuleIn = Annotated[VisitFollowUpRuleIn | NoVisitFollowUpRuleIn, Field(discriminator="trigger")]


class FollowUpRulePatch(InputSchema):
    """Only the fields given change; trigger, channel and brand do not (unknown fields: 422)."""

    name: RuleName | None = None
    delay_hours: DelayHours | None = None
    inactive_days: InactiveDays | None = Field(default=None, description="no_visit rules only (else 409)")
    purpose: Slug | None = None
    subject: Str200 | None = None
    html: Str20000 | None = None
    text: Text20000 | None = None
    sms_max_segments: SmsSegments | None = None
    active: bool | None = Field(default=None, description="false pauses the rule, true resumes it")


class FollowUpRuleOut(Schema):
    id: int
    brand: str
    name: str
    trigger: str
    delay_hours: int
    inactive_days: int | None
    channel: str
    purpose: str
    subject: str
    html: str
    text: str
    active: bool
    campaign_id: int
    created_at: dt.datetime

    @staticmethod
    def resolve_brand(obj: FollowUpRule) -> str:
        return obj.brand.key

    @staticmethod
    def resolve_channel(obj: FollowUpRule) -> str:
        return obj.campaign.channel

    @staticmethod
    def resolve_purpose(obj: FollowUpRule) -> str:
        return obj.campaign.purpose.key

    @staticmethod
    def resolve_subject(obj: FollowUpRule) -> str:
        return obj.campaign.subject

    @staticmethod
    def resolve_html(obj: FollowUpRule) -> str:
        return obj.campaign.html

    @staticmethod
    def resolve_text(obj: FollowUpRule) -> str:
        return obj.campaign.text

    @staticmethod
    def resolve_active(obj: FollowUpRule) -> bool:
        return obj.campaign.status == CampaignStatus.SENDING


class FollowUpRuleFilter(Schema):
    brand: BrandKey | None = None


class FollowUpOut(Schema):
    """One follow-up of the person: planned (``deferred``/``planned``), sent, or why not."""

    id: int
    rule_id: int
    rule: str
    trigger: str
    channel: str
    purpose: str
    visit_id: int | None
    anchor_at: dt.datetime
    due_at: dt.datetime
    window_ends_at: dt.datetime
    planned: bool
    delivery_id: int
    status: str
    reason: str
    decided_at: dt.datetime | None
    deferred_until: dt.datetime | None
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None

    @staticmethod
    def resolve_rule(obj: FollowUp) -> str:
        return obj.rule.name

    @staticmethod
    def resolve_trigger(obj: FollowUp) -> str:
        return obj.rule.trigger

    @staticmethod
    def resolve_channel(obj: FollowUp) -> str:
        return obj.delivery.channel

    @staticmethod
    def resolve_purpose(obj: FollowUp) -> str:
        return obj.delivery.campaign.purpose.key

    @staticmethod
    def resolve_planned(obj: FollowUp) -> bool:
        return obj.delivery.status in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)

    @staticmethod
    def resolve_status(obj: FollowUp) -> str:
        return obj.delivery.status

    @staticmethod
    def resolve_reason(obj: FollowUp) -> str:
        return obj.delivery.reason or (PLANNED if obj.delivery.status == DeliveryStatus.QUEUED else "")

    @staticmethod
    def resolve_decided_at(obj: FollowUp) -> dt.datetime | None:
        return obj.delivery.decided_at

    @staticmethod
    def resolve_deferred_until(obj: FollowUp) -> dt.datetime | None:
        return obj.delivery.deferred_until

    @staticmethod
    def resolve_sent_at(obj: FollowUp) -> dt.datetime | None:
        return obj.delivery.sent_at

    @staticmethod
    def resolve_delivered_at(obj: FollowUp) -> dt.datetime | None:
        return obj.delivery.delivered_at
