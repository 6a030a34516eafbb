"""What a request body or query names, looked up for the API: an unknown one is a 404 that
names the field (DESIGN §7: unknown ids 404), before any service sees the request."""

from __future__ import annotations

from comms.contacts.models import Brand, Centre, Contact
from comms.errors import NotFound
from comms.suppression.models import ConsentEvent, Purpose


def brand_named(key: str, *, field: str = "brand") -> Brand:
    brand = Brand.objects.filter(key=key).first()
    if brand is None:
        raise NotFound(f"unknown brand {key!r}", field=field)
    return brand


def contact_named(contact_id: int, *, field: str = "contact_id") -> Contact:
    contact = Contact.objects.select_related("brand").filter(pk=contact_id).first()
    if contact is None:
        raise NotFound(f"unknown contact {contact_id}", field=field)
    return contact


def purpose_named(brand: Brand | int, key: str, *, field: str = "purpose") -> Purpose:
    brand_id = brand if isinstance(brand, int) else brand.pk
    purpose = Purpose.objects.select_related("brand").filter(brand_id=brand_id, key=key).first()
    if purpose is None:
        raise NotFound(f"unknown purpose {key!r} for this brand", field=field)
    return purpose


def centre_named(brand: Brand | int, key: str, *, field: str) -> Centre:
    brand_id = brand if isinstance(brand, int) else brand.pk
    centre = Centre.objects.filter(brand_id=brand_id, key=key).first()
    if centre is None:
        raise NotFound(f"unknown centre {key!r} for this brand", field=field)
    return centre


def event_named(event_id: int, *, field: str) -> ConsentEvent:
    event = ConsentEvent.objects.filter(pk=event_id).first()
    if event is None:
        raise NotFound(f"unknown event {event_id}", field=field)
    return event
