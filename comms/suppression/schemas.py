import datetime as dt
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import IPvAnyAddress, StringConstraints

from comms.schemas import Id, Instant, ShortText, Str40, Str200, Str254, Str1000, Str20000
from comms.suppression.models import ConsentEvent, Purpose

ChannelIn = Literal["email", "sms"]
SuppressionChannelIn = Literal["email", "sms", "all"]
SourceIn = Literal[
    "web_form",
    "front_desk",
    "api",
    "import",
    "admin",
    "unsubscribe_link",
    "one_click",
    "preference_centre",
    "sms_keyword",
    "mailchimp_webhook",
    "lifevision_webhook",
    "rights_request",
]
ActorIn = Literal["self", "guardian", "staff", "system"]
BasisIn = Literal["consent", "soft_opt_in", "contract"]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)]


class EvidenceIn(Schema):
    ip: IPvAnyAddress | None = None
    user_agent: Str1000 = ""
    proof_sha256: Sha256 | None = Field(
        default=None, description="SHA-256 (hex) of a proof file, e.g. a signed paper form"
    )


class PurposeIn(Schema):
    brand: Str40
    key: Slug
    name: Str200
    channels: list[ChannelIn] = Field(min_length=1, max_length=2)
    notice_text: Str20000
    allows_soft_opt_in: bool = False
    marketing: bool = True
    min_notice_version: int | None = Field(default=None, ge=1, le=1_000_000)
    consent_lifetime_days: int | None = Field(default=None, ge=1, le=36500)


class PurposePatch(Schema):
    name: Str200 | None = None
    channels: list[ChannelIn] | None = Field(default=None, min_length=1, max_length=2)
    allows_soft_opt_in: bool | None = None
    min_notice_version: int | None = Field(default=None, ge=1, le=1_000_000)
    consent_lifetime_days: int | None = Field(default=None, ge=1, le=36500)


class NoticeIn(Schema):
    text: Str20000


class NoticeOut(Schema):
    version: int
    text: str
    created_at: dt.datetime


class PurposeOut(Schema):
    id: int
    brand: str
    key: str
    name: str
    channels: list[str]
    allows_soft_opt_in: bool
    marketing: bool
    min_notice_version: int | None
    consent_lifetime_days: int | None
    notice: NoticeOut | None

    @staticmethod
    def resolve_brand(obj: Purpose) -> str:
        return obj.brand.key

    @staticmethod
    def resolve_notice(obj: Purpose) -> object:
        return obj.current_notice()


class ConsentIn(Schema):
    action: Literal["grant", "withdraw", "confirm"]
    contact_id: Id | None = Field(default=None, description="required for grant and withdraw")
    channel: ChannelIn | None = Field(default=None, description="withdraw: empty means every channel")
    purpose: Slug | None = Field(default=None, description="purpose key; withdraw: empty means every purpose")
    basis: BasisIn = "consent"
    source: SourceIn = "api"
    actor: ActorIn = "self"
    actor_contact_id: Id | None = Field(default=None, description="the guardian, when actor is guardian")
    notice_version: int | None = Field(
        default=None, ge=1, le=1_000_000, description="the version shown; default current"
    )
    opt_out_offered: bool = False
    confirms_event_id: Id | None = Field(default=None, description="confirm: the pending grant")
    require_confirmation: bool = False
    occurred_at: Instant | None = None
    evidence: EvidenceIn | None = None


class ObjectionIn(Schema):
    contact_id: Id
    source: SourceIn = "api"
    actor: ActorIn = "self"
    actor_contact_id: Id | None = None
    occurred_at: Instant | None = None
    evidence: EvidenceIn | None = None


class EventOut(Schema):
    id: int
    chain: int
    seq: int
    contact_id: int | None
    brand: str | None
    address_key: str
    channel: str
    purpose: str | None
    action: str
    basis: str
    source: str
    actor: str
    actor_contact_id: int | None
    recorded_by: str
    notice_version: int | None
    confirms_event_id: int | None
    pending_confirmation: bool
    opt_out_offered: bool
    reason: str
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    evidence_hash: str
    prev_hash: str
    hash: str

    @staticmethod
    def resolve_brand(obj: ConsentEvent) -> str | None:
        return obj.brand.key if obj.brand else None

    @staticmethod
    def resolve_purpose(obj: ConsentEvent) -> str | None:
        return obj.purpose.key if obj.purpose else None

    @staticmethod
    def resolve_notice_version(obj: ConsentEvent) -> int | None:
        return obj.notice.version if obj.notice else None

    @staticmethod
    def resolve_confirms_event_id(obj: ConsentEvent) -> int | None:
        return obj.confirms_id


class DecisionOut(Schema):
    allowed: bool
    reason: str
    event_id: int | None


class ScopeStateOut(Schema):
    purpose: str
    channel: str
    allowed: bool
    reason: str
    event_id: int | None


class ConsentStateOut(Schema):
    contact_id: int
    current: list[ScopeStateOut]
    history: list[EventOut]


class CheckQuery(Schema):
    contact_id: Id
    channel: ChannelIn
    purpose: Slug


class SuppressionIn(Schema):
    address: Str254
    channel: SuppressionChannelIn
    reason: Literal["hard_bounce", "blocked_recipient", "complaint", "withdrawn", "sms_stop", "objection"]
    brand: Str40 | None = Field(default=None, description="empty: every brand")
    source: SourceIn = "api"
    actor: ActorIn = "staff"
    occurred_at: Instant | None = None
    evidence: EvidenceIn | None = None


class SuppressionLiftIn(Schema):
    source: SourceIn = "api"


class SuppressionOut(Schema):
    id: int
    address_key: str
    channel: str
    brand: str | None
    reason: str
    source_event_id: int
    created_at: dt.datetime
    lifted_at: dt.datetime | None
    lifted_by_event_id: int | None

    @staticmethod
    def resolve_brand(obj: object) -> str | None:
        brand = getattr(obj, "brand", None)
        return brand.key if brand else None


class SuppressionFilter(Schema):
    address: ShortText | None = Field(
        default=None, description="an email or phone number; matched by its keyed hash"
    )
    reason: ShortText | None = None
    active: bool | None = None


class BrokenEventOut(Schema):
    event_id: int
    chain: int
    seq: int
    problem: str


class VerifyOut(Schema):
    ok: bool
    events_checked: int
    chains: int
    first_broken: BrokenEventOut | None
    evidence_mismatches: list[int]
    checkpoint_problem: str | None


class ProofOut(Schema):
    sha256: str
    size: int
    content_type: str
    uploaded_at: dt.datetime


class ConsentImportRowIn(Schema):
    external_key: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="the source system's own id for this fact: a re-sent row adds nothing"
    )
    contact_id: Id | None = Field(default=None, description="the contact, or brand + contact_external_id")
    brand: Slug | None = None
    contact_external_id: Str200 | None = None
    action: Literal["grant", "withdraw"] = "grant"
    channel: ChannelIn
    purpose: Slug | None = Field(default=None, description="purpose key; withdraw: empty means every purpose")
    basis: BasisIn = "consent"
    source: SourceIn = "import"
    notice_version: int | None = Field(default=None, ge=1, le=1_000_000)
    opt_out_offered: bool = False
    occurred_at: Instant
    evidence: EvidenceIn | None = None


class ConsentImportIn(Schema):
    rows: list[ConsentImportRowIn] = Field(max_length=5000)


class ConsentImportErrorOut(Schema):
    index: int
    external_key: str
    field: str
    detail: str


class ConsentImportOut(Schema):
    created: int
    unchanged: int
    errors: list[ConsentImportErrorOut]
