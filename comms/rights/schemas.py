import datetime as dt

from ninja import Schema


class ProfileOut(Schema):
    id: int
    brand: str
    kind: str
    external_id: str | None
    first_name: str
    last_name: str
    birth_date: dt.date | None
    email: str | None
    mobile: str | None
    home_centre: str | None
    tags: list[str]
    purchase_at: dt.datetime | None
    erased_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class GuardianLinkOut(Schema):
    guardian_id: int | None
    ward_ids: list[int]


class ExportVisitOut(Schema):
    id: int
    kind: str
    occurred_at: dt.datetime
    centre: str | None
    external_id: str | None


class NoticeShownOut(Schema):
    purpose: str
    version: int
    text: str


class EvidenceOut(Schema):
    ip: str | None
    user_agent: str
    proof_sha256: str
    redacted_at: dt.datetime | None


class ExportEventOut(Schema):
    id: int
    chain: int
    seq: int
    hash: str
    role: str  # subject | guardian (they acted for a ward) | address (about one of their addresses)
    contact_id: int | None
    action: str
    channel: str
    purpose: str | None
    basis: str
    source: str
    actor: str
    actor_contact_id: int | None
    recorded_by: str
    reason: str
    pending_confirmation: bool
    opt_out_offered: bool
    confirms_event_id: int | None
    address_key: str
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    notice: NoticeShownOut | None
    evidence: EvidenceOut | None


class ConsentScopeOut(Schema):
    purpose: str
    channel: str
    allowed: bool
    reason: str
    event_id: int | None


class ExportSuppressionOut(Schema):
    id: int
    address_key: str
    channel: str
    brand: str | None
    reason: str
    source_event_id: int
    created_at: dt.datetime
    lifted_at: dt.datetime | None
    lifted_by_event_id: int | None


class MessageOut(Schema):
    delivery_id: int
    kind: str  # campaign | followup
    campaign_id: int
    campaign: str
    followup_rule_id: int | None
    channel: str
    purpose: str
    provider: str
    status: str
    reason: str
    decision_event_id: int | None
    created_at: dt.datetime
    decided_at: dt.datetime | None
    deferred_until: dt.datetime | None
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    provider_id: str
    attempts: int
    last_error: str


class ReplyOut(Schema):
    reply_id: int
    keyword: str
    text: str
    status: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    provider_id: str


class ProviderMessageOut(Schema):
    delivery_id: int
    provider_id: str
    status: str


class ProviderStatusOut(Schema):
    status: str
    note: str
    messages: list[ProviderMessageOut]


class PropagationOut(Schema):
    lifevision: ProviderStatusOut
    mailchimp: ProviderStatusOut


class RightsLogOut(Schema):
    at: dt.datetime
    actor: str
    action: str
    outcome: str


class ExportOut(Schema):
    format: str
    generated_at: dt.datetime
    contact: ProfileOut
    guardian: GuardianLinkOut
    visits: list[ExportVisitOut]
    restricted: bool
    consent_state: list[ConsentScopeOut]
    consent_events: list[ExportEventOut]
    suppressions: list[ExportSuppressionOut]
    messages: list[MessageOut]
    replies: list[ReplyOut]
    propagation: PropagationOut
    rights_log: list[RightsLogOut]


class CommunicationLogOut(Schema):
    contact_id: int
    generated_at: dt.datetime
    messages: list[MessageOut]
    replies: list[ReplyOut]


class PropagationPlanOut(Schema):
    provider: str
    status: str
    note: str


class ErasureOut(Schema):
    contact_id: int
    erased_at: dt.datetime
    event_id: int
    suppressed_addresses: int
    propagation: list[PropagationPlanOut]


class RestrictionOut(Schema):
    contact_id: int
    restricted: bool
    event_id: int
    occurred_at: dt.datetime
