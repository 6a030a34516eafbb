"""Contacts, visits, brands and the bulk import. Thin: parse, call one service, shape the answer."""

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import LimitOffsetPagination, paginate

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
from comms.errors import InvalidInput
from comms.rights.services import contact_rectify
from comms.schemas import Id, responses

router = Router(tags=["contacts"])
WRITERS = (Role.STAFF, Role.SYSTEM, Role.DPO)


def _input(payload: ContactIn | ContactPatch) -> services.ContactInput:
    data = services.ContactInput()
    for name, value in payload.model_dump(exclude_unset=True).items():
        setattr(data, name, value)
    return data


@router.get("/brands", response=responses({200: list[BrandOut]}))
def list_brands(request: HttpRequest) -> QuerySet[Brand]:
    return selectors.brand_list()


@router.post("/contacts", response=responses({201: ContactOut}))
@require_role(*WRITERS)
def create_contact(request: HttpRequest, payload: ContactIn) -> Status[Any]:
    contact = services.contact_create(data=_input(payload))
    return Status(201, selectors.contact_get(contact_id=contact.pk))


@router.get("/contacts", response=responses({200: list[ContactOut]}))
@paginate(LimitOffsetPagination)
def list_contacts(request: HttpRequest, filters: Query[ContactFilter]) -> QuerySet[Contact]:
    return selectors.contact_list(brand=filters.brand, kind=filters.kind, external_id=filters.external_id)


@router.post("/contacts/import", response=responses({200: ImportOut}))
@require_role(*WRITERS)
def import_contacts(request: HttpRequest, payload: ContactImportIn) -> Status[Any]:
    """Upsert contacts by (brand, external_id). All or nothing: any bad row rejects the batch
    with a 422 that lists every bad row and field. Never changes consent or suppressions."""
    if len(payload.contacts) > settings.IMPORT_MAX_ROWS:
        raise InvalidInput("contacts", f"at most {settings.IMPORT_MAX_ROWS} contacts per request")
    result = services.contacts_import(rows=[_input(row) for row in payload.contacts], atomic=True)
    if result.errors:
        detail = [
            {"type": "value_error", "loc": ["body", "contacts", e.index, e.field], "msg": e.message}
            for e in result.errors
        ]
        return Status(422, {"detail": detail})
    return Status(
        200,
        {"created": result.created, "updated": result.updated, "unchanged": result.unchanged, "errors": []},
    )


@router.get("/contacts/{contact_id}", response=responses({200: ContactOut}))
def get_contact(request: HttpRequest, contact_id: Id) -> Contact:
    return selectors.contact_get(contact_id=contact_id)


@router.patch("/contacts/{contact_id}", response=responses({200: ContactOut}))
@require_role(*WRITERS)
def patch_contact(request: HttpRequest, contact_id: Id, payload: ContactPatch) -> Contact:
    """Change the given fields. A change of personal data (name, birth date, email, mobile,
    guardian) is a rectification (art. 16), recorded in the ledger and the rights audit log."""
    contact = selectors.contact_get(contact_id=contact_id)
    contact_rectify(contact=contact, data=_input(payload), actor=principal_name(request))
    return selectors.contact_get(contact_id=contact_id)


@router.post("/contacts/{contact_id}/visits", response=responses({200: VisitOut, 201: VisitOut}))
@require_role(*WRITERS)
def record_visit(request: HttpRequest, contact_id: Id, payload: VisitIn) -> Status[Any]:
    """Record a visit. Idempotent on external_id: a repeat answers 200 with the first visit."""
    contact = selectors.contact_get(contact_id=contact_id)
    visit, created = services.visit_record(
        contact=contact,
        kind=payload.kind,
        occurred_at=payload.occurred_at,
        centre=payload.centre,
        external_id=payload.external_id,
    )
    return Status(201 if created else 200, visit)


@router.get("/contacts/{contact_id}/visits", response=responses({200: list[VisitOut]}))
@paginate(LimitOffsetPagination)
def list_visits(request: HttpRequest, contact_id: Id) -> QuerySet[Visit]:
    return selectors.visit_list(contact=selectors.contact_get(contact_id=contact_id))
