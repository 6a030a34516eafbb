"""Reads for contacts, visits and brands."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from comms.contacts.models import Brand, Centre, Contact, Visit
from comms.errors import NotFound


def contact_get(*, contact_id: int) -> Contact:
    contact = (
        Contact.objects.select_related("brand", "home_centre")
        .prefetch_related("tags")
        .filter(pk=contact_id)
        .first()
    )
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    return contact


def contact_list(
    *, brand: str | None = None, kind: str | None = None, external_id: str | None = None
) -> QuerySet[Contact]:
    contacts = Contact.objects.select_related("brand", "home_centre").prefetch_related("tags").order_by("id")
    if brand:
        contacts = contacts.filter(brand__key=brand)
    if kind:
        contacts = contacts.filter(kind=kind)
    if external_id:
        contacts = contacts.filter(external_id=external_id)
    return contacts


def visit_list(*, contact: Contact) -> QuerySet[Visit]:
    return Visit.objects.filter(contact=contact).select_related("centre").order_by("-occurred_at", "-id")


def brand_list() -> QuerySet[Brand]:
    return Brand.objects.prefetch_related(
        Prefetch("centres", queryset=Centre.objects.order_by("key"))
    ).order_by("key")
