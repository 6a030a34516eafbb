"""Contacts, visits, brands and the bulk import. Thin: parse, call one service, shape the answer."""

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate

from comms.accounts.models import Role
from comms.auth import principal_name, require_role
from comms.contacts import selectors, services
from comms.contacts.models import Brand, Contact, Visit
from comms.contacts.schemas import (
    BrandOut,
    ContactFilter,
    ContactImportIn,
    ContactIn,
    ContactOut,
    ContactPatch,
    ImportOut,
    VisitIn,
    VisitOut,
)
from comms.references import brand_named, centre_named, contact_named
from comms.rights.services import contact_rectify
from comms.schemas import Pagination, PathId, responses

router = Router(tags=["contacts"])
WRITERS = (Role.STAFF, Role.SYSTEM, Role.DPO)


def _input(payload: ContactIn | ContactPatch) -> services.ContactInput:
    data = services.ContactInput()
    for name, value in payload.model_dump(exclude_unset=True).items():
        setattr(data, name, value)
    return data


def _references(payload: ContactIn | ContactPatch, *, brand: Brand) -> None:
    """404 naming the field for a guardian or centre that does not exist."""
    if payload.guardian_id is not None:
        contact_named(payload.guardian_id, field="guardian_id")
    if payload.home_centre:
        centre_named(brand, payload.home_centre, field="home_centre")


@router.get("/brands", response=responses({200: list[BrandOut]}), summary="List the brands")
def list_brands(request: HttpRequest) -> QuerySet[Brand]:
    """Every brand with its SMS sender, e-mail sender and centre keys."""
    return selectors.brand_list()


@router.post("/contacts", response=responses({201: ContactOut}), summary="Create a contact")
@require_role(*WRITERS)
def create_contact(request: HttpRequest, payload: ContactIn) -> Status[Any]:
    """Create a member, guest or lead of a brand. Addresses are normalised (e-mail in lower
    case, mobile as E.164). Creating a contact records no consent: use `POST /consents`.
    409 when the mobile is not a mobile number, the birth date lies in the future, or the
    external id is already taken in the brand."""
    brand = brand_named(payload.brand)
    _references(payload, brand=brand)
    contact = services.contact_create(data=_input(payload))
    return Status(201, selectors.contact_get(contact_id=contact.pk))


@router.get("/contacts", response=responses({200: list[ContactOut]}), summary="List contacts")
@paginate(Pagination)
def list_contacts(request: HttpRequest, filters: Query[ContactFilter]) -> QuerySet[Contact]:
    """Contacts, filtered by brand, kind or external id (an unknown brand matches nothing)."""
    return selectors.contact_list(brand=filters.brand, kind=filters.kind, external_id=filters.external_id)


@router.post("/contacts/import", response=responses({200: ImportOut}), summary="Import contacts")
@require_role(*WRITERS)
def import_contacts(request: HttpRequest, payload: ContactImportIn) -> Status[Any]:
    """Upsert contacts by (brand, external_id), at most `COMMS_IMPORT_MAX_ROWS` (5000) per
    request. All or nothing: a row the service refuses (unknown brand, guardian or centre, an
    external id twice in the batch, a number that is not a mobile) rejects the batch with a
    409 that lists every such row and field (`detail[].loc` = `["body", "contacts", index,
    field]`). Never changes consent or suppressions."""
    result = services.contacts_import(rows=[_input(row) for row in payload.contacts], atomic=True)
    if result.errors:
        detail = [
            {"type": "refused", "loc": ["body", "contacts", e.index, e.field], "msg": e.message}
            for e in result.errors
        ]
        first = result.errors[0]
        return Status(409, {"detail": detail, "field": f"contacts.{first.index}.{first.field}"})
    return Status(
        200,
        {"created": result.created, "updated": result.updated, "unchanged": result.unchanged, "errors": []},
    )


@router.get("/contacts/{contact_id}", response=responses({200: ContactOut}), summary="Get a contact")
def get_contact(request: HttpRequest, contact_id: PathId) -> Contact:
    """The contact's profile (an erased contact shows what remains: no personal data)."""
    return selectors.contact_get(contact_id=contact_id)


@router.patch("/contacts/{contact_id}", response=responses({200: ContactOut}), summary="Change a contact")
@require_role(*WRITERS)
def patch_contact(request: HttpRequest, contact_id: PathId, payload: ContactPatch) -> Contact:
    """Change the given fields; `null` clears one. Unknown fields are refused (422), so is
    `brand`. A change of personal data (name, birth date, email, mobile, guardian) is a
    rectification (art. 16), recorded in the ledger and the rights audit log."""
    contact = selectors.contact_get(contact_id=contact_id)
    _references(payload, brand=contact.brand)
    contact_rectify(contact=contact, data=_input(payload), actor=principal_name(request))
    return selectors.contact_get(contact_id=contact_id)


@router.post(
    "/contacts/{contact_id}/visits",
    response=responses({200: VisitOut, 201: VisitOut}),
    summary="Record a visit",
)
@require_role(*WRITERS)
def record_visit(request: HttpRequest, contact_id: PathId, payload: VisitIn) -> Status[Any]:
    """Record a visit (trial session, check-in, class booking); follow-up rules plan their
    messages from it. Idempotent on `external_id`: a repeat answers 200 with the first visit.
    409 when `occurred_at` lies in the future."""
    contact = selectors.contact_get(contact_id=contact_id)
    if payload.centre:
        centre_named(contact.brand, payload.centre, field="centre")
    visit, created = services.visit_record(
        contact=contact,
        kind=payload.kind,
        occurred_at=payload.occurred_at,
        centre=payload.centre,
        external_id=payload.external_id,
    )
    return Status(201 if created else 200, visit)


@router.get(
    "/contacts/{contact_id}/visits",
    response=responses({200: list[VisitOut]}),
    summary="List a contact's visits",
)
@paginate(Pagination)
def list_visits(request: HttpRequest, contact_id: PathId) -> QuerySet[Visit]:
    """The contact's visits, newest first."""
    return selectors.visit_list(contact=selectors.contact_get(contact_id=contact_id))
