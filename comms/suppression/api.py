"""Purposes, consents, objections, suppressions, the gate's check and ledger verification."""

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import File, Query, Router, Status, UploadedFile
from ninja.pagination import paginate

from comms.accounts.models import Role
from comms.auth import principal_name, require_role
from comms.contacts.addresses import normalise_address
from comms.contacts.models import Contact
from comms.contacts.selectors import contact_get
from comms.errors import InvalidInput, NotFound
from comms.openapi import answers
from comms.references import brand_named, contact_named, event_named, purpose_named
from comms.schemas import Pagination, PathId, responses
from comms.suppression import selectors, services
from comms.suppression.gate import check
from comms.suppression.keys import address_key
from comms.suppression.models import ConsentEvent, Purpose, Suppression
from comms.suppression.schemas import (
    BrandKey,
    CheckQuery,
    ConsentConfirmIn,
    ConsentGrantIn,
    ConsentImportIn,
    ConsentImportOut,
    ConsentIn,
    ConsentStateOut,
    DecisionOut,
    EventOut,
    EvidenceIn,
    NoticeIn,
    NoticeOut,
    ObjectionIn,
    ProofOut,
    PurposeIn,
    PurposeOut,
    PurposePatch,
    SuppressionFilter,
    SuppressionIn,
    SuppressionLiftIn,
    SuppressionOut,
    VerifyOut,
)
from comms.suppression.services import Evidence, Principal

router = Router(tags=["consent"])
RECORDERS = (Role.STAFF, Role.SYSTEM, Role.DPO)
PURPOSE_EDITORS = (Role.MARKETER, Role.DPO, Role.SYSTEM)


def _evidence(payload: EvidenceIn | None) -> Evidence | None:
    if payload is None:
        return None
    return Evidence(
        ip=str(payload.ip) if payload.ip else None,
        user_agent=payload.user_agent,
        proof_sha256=payload.proof_sha256 or "",
    )


def _principal(request: HttpRequest, actor: str, guardian_id: int | None) -> Principal:
    guardian = None if guardian_id is None else contact_named(guardian_id, field="actor_contact_id")
    return Principal(actor=actor, guardian=guardian, recorded_by=principal_name(request))


_EVENT_RELATIONS = ("brand", "purpose", "notice")


def _event(event: ConsentEvent) -> ConsentEvent:
    """The event as the response shows it (its brand, purpose and notice). The service's own
    instance carries its purpose and notice, and its brand is its contact's, loaded with the
    contact: then nothing is read again (a fifth of a consent request's time was this re-read).
    An instance without them, or whose brand is not its contact's, is read back as before."""
    contact = event.contact if ConsentEvent.contact.is_cached(event) else None
    if (
        contact is not None
        and contact.brand_id == event.brand_id
        and Contact.brand.is_cached(contact)
        and not ConsentEvent.brand.is_cached(event)
    ):
        ConsentEvent.brand.field.set_cached_value(event, contact.brand)
    complete = all(
        getattr(event, f"{name}_id") is None or getattr(ConsentEvent, name).is_cached(event)
        for name in _EVENT_RELATIONS
    )
    if not complete:
        return ConsentEvent.objects.select_related(*_EVENT_RELATIONS).get(pk=event.pk)
    # As the database answers them: the instants in UTC, whatever offset a request gave.
    for name in ("occurred_at", "recorded_at"):
        value = getattr(event, name)
        if value.tzinfo is not dt.UTC:
            setattr(event, name, value.astimezone(dt.UTC))
    return event


def _purpose(purpose_id: int) -> Purpose:
    purpose = Purpose.objects.select_related("brand").filter(pk=purpose_id).first()
    if purpose is None:
        raise NotFound(f"purpose {purpose_id} not found")
    return purpose


# --- purposes -------------------------------------------------------------------------------


@router.get(
    "/purposes", response=responses({200: list[PurposeOut]}), tags=["purposes"], summary="List purposes"
)
@paginate(Pagination)
def list_purposes(request: HttpRequest, brand: BrandKey | None = None) -> QuerySet[Purpose]:
    """Every purpose (what a message is for), optionally of one brand, with its current notice."""
    purposes = Purpose.objects.select_related("brand").order_by("brand__key", "key")
    return purposes.filter(brand__key=brand) if brand else purposes


@router.post(
    "/purposes", response=responses({201: PurposeOut}), tags=["purposes"], summary="Create a purpose"
)
@require_role(*PURPOSE_EDITORS)
def create_purpose(request: HttpRequest, payload: PurposeIn) -> Status[Any]:
    """A purpose of a brand with its channels and notice text (version 1). 409 when the key
    is taken in the brand."""
    purpose = services.purpose_create(
        brand=brand_named(payload.brand),
        key=payload.key,
        name=payload.name,
        channels=payload.channels,
        notice_text=payload.notice_text,
        allows_soft_opt_in=payload.allows_soft_opt_in,
        marketing=payload.marketing,
        min_notice_version=payload.min_notice_version,
        consent_lifetime_days=payload.consent_lifetime_days,
    )
    return Status(201, _purpose(purpose.pk))


@router.get(
    "/purposes/{purpose_id}",
    response=responses({200: PurposeOut}),
    tags=["purposes"],
    summary="Get a purpose",
)
def get_purpose(request: HttpRequest, purpose_id: PathId) -> Purpose:
    """The purpose with its settings and current notice."""
    return _purpose(purpose_id)


@router.patch(
    "/purposes/{purpose_id}",
    response=responses({200: PurposeOut}),
    tags=["purposes"],
    summary="Change a purpose",
)
@require_role(*PURPOSE_EDITORS)
def patch_purpose(request: HttpRequest, purpose_id: PathId, payload: PurposePatch) -> Purpose:
    """Change the given settings. Unknown fields are refused (422). 409 when
    `min_notice_version` is above the latest notice version."""
    given = payload.model_dump(exclude_unset=True)
    services.purpose_update(
        purpose=_purpose(purpose_id),
        name=payload.name,
        channels=payload.channels,
        allows_soft_opt_in=payload.allows_soft_opt_in,
        min_notice_version=payload.min_notice_version,
        consent_lifetime_days=payload.consent_lifetime_days,
        clear_min_notice_version="min_notice_version" in given and payload.min_notice_version is None,
        clear_consent_lifetime="consent_lifetime_days" in given and payload.consent_lifetime_days is None,
    )
    return _purpose(purpose_id)


@router.get(
    "/purposes/{purpose_id}/notices",
    response=responses({200: list[NoticeOut]}),
    tags=["purposes"],
    summary="List a purpose's notice versions",
)
def list_notices(request: HttpRequest, purpose_id: PathId) -> Any:
    """Every version of the notice text, oldest first; a consent points at the one shown."""
    return _purpose(purpose_id).notices.order_by("version")


@router.post(
    "/purposes/{purpose_id}/notices",
    response=responses({201: NoticeOut}),
    tags=["purposes"],
    summary="Publish a notice version",
)
@require_role(*PURPOSE_EDITORS)
def publish_notice(request: HttpRequest, purpose_id: PathId, payload: NoticeIn) -> Status[Any]:
    """Publish a new version of the notice text (an edit is always a new version)."""
    return Status(201, services.purpose_notice_publish(purpose=_purpose(purpose_id), text=payload.text))


# --- proofs of consent ---------------------------------------------------------------------


@router.post(
    "/evidence/proofs",
    response=responses({201: ProofOut}),
    tags=["consent"],
    summary="Upload a proof of consent",
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "encoding": {
                        "file": {
                            "contentType": "application/pdf, image/heic, image/jpeg, image/png, image/tiff"
                        }
                    }
                }
            }
        }
    },
)
@require_role(*RECORDERS)
def upload_proof(request: HttpRequest, file: File[UploadedFile]) -> Status[Any]:
    """Upload a proof of consent (PDF or image, e.g. a signed paper form), at most
    `COMMS_PROOF_MAX_BYTES` (10 MB). Answers its SHA-256, which a grant then names as
    `evidence.proof_sha256`; the ledger seals only the hash. 409 when the file is empty, too
    large, or of another type than PDF, HEIC, JPEG, PNG or TIFF."""
    content = file.read(settings.PROOF_MAX_BYTES + 1)
    proof = services.proof_store(
        content=content, content_type=file.content_type or "", uploaded_by=principal_name(request)
    )
    return Status(201, proof)


# --- consents, objections, the gate ---------------------------------------------------------


@router.post("/consents", response=responses({201: EventOut}), summary="Record a consent event")
@require_role(*RECORDERS)
def record_consent(request: HttpRequest, payload: ConsentIn) -> Status[Any]:
    """Record a grant, a withdrawal, or the person's confirmation (double opt-in) of a pending
    grant: one event appended to the hash-chained ledger. `action` decides which fields the
    body takes. 409 when the ledger's rules refuse it (a channel the purpose does not have, a
    soft opt-in the purpose does not permit, a minor without their guardian, a time in the
    future, a confirmation of something that is not a pending grant)."""
    principal = _principal(request, payload.actor, payload.actor_contact_id)
    evidence = _evidence(payload.evidence)
    if isinstance(payload, ConsentConfirmIn):
        event_named(payload.confirms_event_id, field="confirms_event_id")
        grant = selectors.event_get(event_id=payload.confirms_event_id)
        event = services.consent_confirm(
            grant=grant,
            source=payload.source,
            principal=principal,
            occurred_at=payload.occurred_at,
            evidence=evidence,
        )
        return Status(201, _event(event))
    contact = contact_named(payload.contact_id)
    if isinstance(payload, ConsentGrantIn):
        event = services.consent_grant(
            contact=contact,
            channel=payload.channel,
            purpose=purpose_named(contact.brand_id, payload.purpose),
            basis=payload.basis,
            source=payload.source,
            principal=principal,
            notice_version=payload.notice_version,
            opt_out_offered=payload.opt_out_offered,
            occurred_at=payload.occurred_at,
            evidence=evidence,
            require_confirmation=payload.require_confirmation,
        )
    else:
        event = services.consent_withdraw(
            contact=contact,
            channel=payload.channel,
            purpose=purpose_named(contact.brand_id, payload.purpose) if payload.purpose else None,
            source=payload.source,
            principal=principal,
            occurred_at=payload.occurred_at,
            evidence=evidence,
        )
    return Status(201, _event(event))


@router.post("/consents/import", response=responses({200: ConsentImportOut}), summary="Import consent events")
@require_role(Role.SYSTEM, Role.DPO)
def import_consents(request: HttpRequest, payload: ConsentImportIn) -> dict[str, Any]:
    """Bulk grants and withdrawals from a member system, at most 5000 rows, idempotent by
    `external_key`. A row that does not match the document refuses the request (422); of the
    rest, good rows are kept, and each row the ledger refuses (unknown contact or purpose, a
    repeated key, a time in the future) is listed in `errors` with its index and field and
    writes nothing."""
    rows = [
        services.ConsentImportRow(
            external_key=row.external_key,
            contact_id=row.contact_id,
            brand=row.brand or "",
            contact_external_id=row.contact_external_id or "",
            action=row.action,
            channel=row.channel,
            purpose=row.purpose or "",
            basis=row.basis,
            source=row.source,
            notice_version=row.notice_version,
            opt_out_offered=row.opt_out_offered,
            occurred_at=row.occurred_at,
            evidence=_evidence(row.evidence),
        )
        for row in payload.rows
    ]
    result = services.consents_import(
        rows=rows, principal=Principal(actor="staff", recorded_by=principal_name(request))
    )
    return {
        "created": result.created,
        "unchanged": result.unchanged,
        "errors": [
            {"index": e.index, "external_key": e.external_key, "field": e.field, "detail": e.message}
            for e in result.errors
        ],
    }


@router.post("/objections", response=responses({201: EventOut}), summary="Record an objection")
@require_role(*RECORDERS)
def record_objection(request: HttpRequest, payload: ObjectionIn) -> Status[Any]:
    """An objection to direct marketing (GDPR art. 21): a hard stop for every channel and
    purpose of the brand, until the person consents again."""
    contact = contact_named(payload.contact_id)
    event = services.objection_record(
        contact=contact,
        source=payload.source,
        principal=_principal(request, payload.actor, payload.actor_contact_id),
        occurred_at=payload.occurred_at,
        evidence=_evidence(payload.evidence),
    )
    return Status(201, _event(event))


@router.get(
    "/contacts/{contact_id}/consents",
    response=responses({200: ConsentStateOut}),
    summary="A contact's consents",
)
def contact_consents(request: HttpRequest, contact_id: PathId) -> dict[str, Any]:
    """The gate's current answer for every purpose × channel of the brand, and the full history."""
    contact = contact_get(contact_id=contact_id)
    return {
        "contact_id": contact.pk,
        "current": [
            {
                "purpose": state.purpose.key,
                "channel": state.channel,
                "allowed": state.decision.allowed,
                "reason": state.decision.reason,
                "event_id": state.decision.event_id,
            }
            for state in selectors.consent_state(contact=contact)
        ],
        "history": list(selectors.contact_events(contact=contact).select_related("brand")),
    }


@router.get("/check", response=responses({200: DecisionOut}), summary="Ask the gate")
@answers(refers=True)
def gate_check(request: HttpRequest, query: Query[CheckQuery]) -> dict[str, Any]:
    """The gate's decision for one message now, with its reason and the ledger event it rests
    on. Sends nothing, records nothing."""
    contact = contact_named(query.contact_id)
    purpose = purpose_named(contact.brand_id, query.purpose)
    decision = check(contact=contact, channel=query.channel, purpose=purpose)
    return {"allowed": decision.allowed, "reason": decision.reason, "event_id": decision.event_id}


# --- suppressions and the ledger ------------------------------------------------------------


@router.get(
    "/suppressions",
    response=responses({200: list[SuppressionOut]}),
    tags=["suppressions"],
    summary="List suppressions",
)
@paginate(Pagination)
def list_suppressions(request: HttpRequest, filters: Query[SuppressionFilter]) -> QuerySet[Suppression]:
    """Suppressions, newest first, filtered by address (its keyed hash), reason or state."""
    suppressions = Suppression.objects.select_related("brand").order_by("-created_at", "-id")
    if filters.address:
        channel = "email" if "@" in filters.address else "sms"
        try:
            normalised = normalise_address(channel, filters.address, field="address")
        except InvalidInput:
            return suppressions.none()  # not an address anybody can have: nothing is suppressed
        suppressions = suppressions.filter(address_key=address_key(channel, normalised))
    if filters.reason:
        suppressions = suppressions.filter(reason=filters.reason)
    if filters.active is not None:
        suppressions = suppressions.filter(lifted_at__isnull=filters.active)
    return suppressions


@router.post(
    "/suppressions",
    response=responses({200: SuppressionOut, 201: SuppressionOut}),
    tags=["suppressions"],
    summary="Suppress an address",
)
@require_role(*RECORDERS)
def add_suppression(request: HttpRequest, payload: SuppressionIn) -> Status[Any]:
    """Suppress an address for a channel or all marketing (kept by its keyed hash, through
    erasure). Repeating an active suppression answers 200 with the existing one."""
    event, suppression = services.suppression_add(
        channel=payload.channel,
        address=payload.address,
        reason=payload.reason,
        source=payload.source,
        principal=Principal(actor=payload.actor, recorded_by=principal_name(request)),
        brand=brand_named(payload.brand) if payload.brand else None,
        occurred_at=payload.occurred_at,
        evidence=_evidence(payload.evidence),
    )
    if suppression is None:
        existing = (
            Suppression.objects.select_related("brand")
            .filter(address_key=event.address_key, reason=payload.reason, lifted_at__isnull=True)
            .first()
        )
        return Status(200, existing)
    return Status(201, suppression)


@router.post(
    "/suppressions/{suppression_id}/lift",
    response=responses({200: SuppressionOut}),
    tags=["suppressions"],
    summary="Lift a suppression",
)
@require_role(Role.STAFF, Role.DPO)
def lift_suppression(request: HttpRequest, suppression_id: PathId, payload: SuppressionLiftIn) -> Suppression:
    """Lift a bounce or operator block. A suppression the person caused (withdrawal,
    objection, SMS stop, complaint) answers 403: only their own new, confirmed consent lifts it.
    409 when it is lifted already."""
    suppression = selectors.suppression_get(suppression_id=suppression_id)
    services.suppression_lift(
        suppression=suppression,
        source=payload.source,
        principal=Principal(actor="staff", recorded_by=principal_name(request)),
    )
    return Suppression.objects.select_related("brand").get(pk=suppression_id)


@router.get(
    "/ledger/verify", response=responses({200: VerifyOut}), tags=["ledger"], summary="Verify the ledger"
)
@require_role(Role.DPO, Role.SYSTEM)
def verify_ledger(request: HttpRequest) -> Any:
    """Recompute every hash chain, the evidence hashes and the latest checkpoint, and name the
    first broken event. Reads the whole ledger: slow on a large one."""
    return selectors.ledger_verify()
