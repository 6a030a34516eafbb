import datetime as dt
import ipaddress
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import BeforeValidator, PlainValidator, StringConstraints, WithJsonSchema

from comms.schemas import (
    NOT_BLANK,
    SLUG,
    Address,
    Id,
    InputSchema,
    Instant,
    Name200,
    PathId,
    QueryBool,
    Slug,
    Str200,
    Str1000,
    Text20000,
    json_integer,
)
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
SuppressionReasonIn = Literal[
    "hard_bounce", "blocked_recipient", "complaint", "withdrawn", "sms_stop", "objection"
]
SuppressionReasonAny = Literal[
    "hard_bounce",
    "blocked_recipient",
    "complaint",
    "withdrawn",
    "sms_stop",
    "objection",
    "erased",
    "restricted",
]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
BrandKey = Annotated[str, StringConstraints(max_length=40, pattern=SLUG)]
NoticeVersion = Annotated[int, Field(ge=1, le=1_000_000), BeforeValidator(json_integer), Field(strict=True)]


def _ip(value: object) -> str:
    # Only the two textual forms JSON Schema's ipv4 and ipv6 formats know (no zone index).
    if not isinstance(value, str) or "%" in value:
        raise ValueError("must be an IPv4 or IPv6 address")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address") from None


IpAddress = Annotated[
    str,
    PlainValidator(_ip),
    WithJsonSchema(
        {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}], "examples": ["192.0.2.10"]}
    ),
]


class EvidenceIn(InputSchema):
    ip: IpAddress | None = Field(default=None, description="where the person acted from")
    user_agent: Str1000 = ""
    proof_sha256: Sha256 | None = Field(
        default=None, description="SHA-256 (hex) of a proof file, e.g. a signed paper form"
    )


class PurposeIn(InputSchema):
    brand: BrandKey = Field(description="the brand's key (404 when unknown)")
    key: Slug = Field(description="unique per brand (409 when taken)")
    name: Name200
    channels: list[ChannelIn] = Field(min_length=1, max_length=2)
    notice_text: Text20000 = Field(description="the notice people are shown: version 1")
    allows_soft_opt_in: bool = False
    marketing: bool = True
    min_notice_version: (
        Annotated[int, Field(ge=1, le=1), BeforeValidator(json_integer), Field(strict=True)] | None
    ) = Field(default=None, description="a new purpose has only version 1")
    consent_lifetime_days: (
        Annotated[int, Field(ge=1, le=36500), BeforeValidator(json_integer), Field(strict=True)] | None
    ) = None


class PurposePatch(InputSchema):
    """Only the fields given change; for the last two, ``null`` clears the setting. Unknown
    fields are refused (the notice text changes through ``POST /purposes/{id}/notices``)."""

    name: Name200 | None = None
    channels: list[ChannelIn] | None = Field(default=None, min_length=1, max_length=2)
    allows_soft_opt_in: bool | None = None
    min_notice_version: NoticeVersion | None = Field(
        default=None, description="at most the latest version (else 409); null: no minimum"
    )
    consent_lifetime_days: (
        Annotated[int, Field(ge=1, le=36500), BeforeValidator(json_integer), Field(strict=True)] | None
    ) = None


class NoticeIn(InputSchema):
    text: Text20000


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


class _ConsentEventIn(InputSchema):
    source: SourceIn = "api"
    actor: ActorIn = "self"
    actor_contact_id: Id | None = Field(
        default=None, description="the guardian, when actor is guardian (404 when unknown)"
    )
    occurred_at: Instant | None = Field(
        default=None, description="when the person acted; default now; not in the future (else 409)"
    )
    evidence: EvidenceIn | None = None


class ConsentGrantIn(_ConsentEventIn):
    action: Literal["grant"]
    contact_id: Id = Field(description="404 when unknown")
    channel: ChannelIn
    purpose: Slug = Field(description="the purpose key of the contact's brand (404 when unknown)")
    basis: BasisIn = "consent"
    notice_version: NoticeVersion | None = Field(
        default=None, description="the version shown; default current"
    )
    opt_out_offered: bool = False
    require_confirmation: bool = Field(
        default=False, description="wait for the person's confirmation (double opt-in)"
    )


class ConsentWithdrawIn(_ConsentEventIn):
    action: Literal["withdraw"]
    contact_id: Id = Field(description="404 when unknown")
    channel: ChannelIn | None = Field(default=None, description="null: every channel")
    purpose: Slug | None = Field(
        default=None,
        description="purpose key (404 when unknown); null: every purpose (then give no channel, else 409)",
    )


class ConsentConfirmIn(_ConsentEventIn):
    action: Literal["confirm"]
    confirms_event_id: Id = Field(description="the pending grant (404 when unknown)")


ConsentIn = Annotated[ConsentGrantIn | ConsentWithdrawIn | ConsentConfirmIn, Field(discriminator="action")]


class ObjectionIn(InputSchema):
    contact_id: Id = Field(description="404 when unknown")
    source: SourceIn = "api"
    actor: ActorIn = "self"
    actor_contact_id: Id | None = Field(default=None, description="the guardian (404 when unknown)")
    occurred_at: Instant | None = Field(default=None, description="default now; not in the future (else 409)")
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
    contact_id: PathId = Field(description="404 when unknown")
    channel: ChannelIn
    purpose: Slug = Field(description="a purpose key of the contact's brand (404 when unknown)")


class SuppressionIn(InputSchema):
    address: Address = Field(
        description="an email address (channel email) or a mobile number (channel sms); for channel all, "
        "either. An address that is not one of its channel, or a number that is not a mobile: 409"
    )
    channel: SuppressionChannelIn
    reason: SuppressionReasonIn
    brand: BrandKey | None = Field(default=None, description="null: every brand (404 when unknown)")
    source: SourceIn = "api"
    actor: ActorIn = "staff"
    occurred_at: Instant | None = None
    evidence: EvidenceIn | None = None


class SuppressionLiftIn(InputSchema):
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
    address: Address | None = Field(
        default=None,
        description="an email address or phone number, matched by its keyed hash (one that is not "
        "a valid address matches nothing)",
    )
    reason: SuppressionReasonAny | None = None
    active: QueryBool | None = Field(default=None, description="true: only active; false: only lifted")


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


class ConsentImportRowIn(InputSchema):
    external_key: Annotated[str, StringConstraints(max_length=200, pattern=NOT_BLANK)] = Field(
        description="the source system's own id for this fact: a re-sent row adds nothing"
    )
    contact_id: Id | None = Field(default=None, description="the contact, or brand + contact_external_id")
    brand: BrandKey | None = None
    contact_external_id: Str200 | None = None
    action: Literal["grant", "withdraw"] = "grant"
    channel: ChannelIn
    purpose: Slug | None = Field(default=None, description="purpose key; withdraw: empty means every purpose")
    basis: BasisIn = "consent"
    source: SourceIn = "import"
    notice_version: NoticeVersion | None = None
    opt_out_offered: bool = False
    occurred_at: Instant
    evidence: EvidenceIn | None = None


class ConsentImportIn(InputSchema):
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
