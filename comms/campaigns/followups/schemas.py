import datetime as dt
from typing import Literal

from ninja import Field, Schema

from comms.campaigns.followups.handoff import PLANNED
from comms.campaigns.models import CampaignStatus, DeliveryStatus, FollowUp, FollowUpRule
from comms.schemas import ShortText, Str40, Str60, Str200, Str20000

TriggerIn = Literal["trial_visit", "class_booking", "no_visit"]
ChannelIn = Literal["email", "sms"]


class FollowUpRuleIn(Schema):
    brand: Str40
    name: Str200
    trigger: TriggerIn
    delay_hours: int = Field(ge=0, le=100_000, description="after the visit, or after the lapse (no_visit)")
    inactive_days: int | None = Field(default=None, ge=1, le=3650, description="no_visit only")
    channel: ChannelIn
    purpose: Str60
    subject: Str200 = ""
    html: Str20000 = ""
    text: Str20000
    sms_max_segments: int = Field(default=2, ge=1, le=10)
    active: bool = True


class FollowUpRulePatch(Schema):
    name: Str200 | None = None
    delay_hours: int | None = Field(default=None, ge=0, le=100_000)
    inactive_days: int | None = Field(default=None, ge=1, le=3650)
    purpose: Str60 | None = None
    subject: Str200 | None = None
    html: Str20000 | None = None
    text: Str20000 | None = None
    sms_max_segments: int | None = Field(default=None, ge=1, le=10)
    active: bool | None = None


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
    brand: ShortText | None = None


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
