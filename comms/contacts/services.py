"""Writes for contacts and visits. An import never touches the ledger: consent is only ever
recorded through comms/suppression/services.py. What other apps do about a visit they learn
from ``comms.contacts.signals``; an erasure is ``comms.rights.erasure`` (it spans the ledger
and the messages)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from comms.contacts.addresses import normalise_email, normalise_mobile
from comms.contacts.models import Brand, Centre, Contact, ContactKind, Tag, Visit, VisitKind
from comms.contacts.signals import visit_recorded
from comms.errors import Conflict, InvalidInput

# Fields an update may change; None in ``ContactInput`` means "leave as it is".
_UNSET: Any = object()


@dataclass
class ContactInput:
    """One contact as given by the API, an import row or the admin; not yet validated."""

    brand: str | None = None
    kind: str | None = None
    external_id: str | None = _UNSET
    first_name: str | None = _UNSET
    last_name: str | None = _UNSET
    birth_date: dt.date | None = _UNSET
    email: str | None = _UNSET
    mobile: str | None = _UNSET
    guardian_id: int | None = _UNSET
    home_centre: str | None = _UNSET
    tags: Sequence[str] | None = _UNSET
    purchase_at: dt.datetime | None = _UNSET


@dataclass
class CleanContact:
    values: dict[str, Any] = field(default_factory=dict)
    tags: list[str] | None = None


def _is_set(value: Any) -> bool:
    return value is not _UNSET


def brand_get(key: str, *, field_name: str = "brand") -> Brand:
    brand = Brand.objects.filter(key=key).first()
    if brand is None:
        raise InvalidInput(field_name, f"unknown brand {key!r}")
    return brand


def _plausible_instant(value: dt.datetime) -> bool:
    if value.utcoffset() is None:
        return False
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        return False
    return 1900 <= utc.year <= 2999


def _clean(data: ContactInput, *, brand: Brand, contact: Contact | None) -> CleanContact:
    """Validate and normalise every field given; raise InvalidInput naming the first bad one."""
    clean = CleanContact()
    values = clean.values
    if data.kind is not None:
        if data.kind not in ContactKind.values:
            raise InvalidInput("kind", f"must be one of {', '.join(ContactKind.values)}")
        values["kind"] = data.kind
    if _is_set(data.external_id):
        external_id = (data.external_id or "").strip() or None
        if external_id is not None and len(external_id) > 100:
            raise InvalidInput("external_id", "is longer than 100 characters")
        values["external_id"] = external_id
    for name in ("first_name", "last_name"):
        value = getattr(data, name)
        if _is_set(value):
            text = (value or "").strip()
            if len(text) > 100:
                raise InvalidInput(name, "is longer than 100 characters")
            values[name] = text
    if _is_set(data.birth_date):
        born = data.birth_date
        if born is not None and (born > timezone.localdate() or born < dt.date(1900, 1, 1)):
            raise InvalidInput("birth_date", "must be a real date of birth (after 1900, not in the future)")
        values["birth_date"] = born
    if _is_set(data.email):
        values["email"] = normalise_email(data.email) if data.email else None
    if _is_set(data.mobile):
        values["mobile"] = normalise_mobile(data.mobile) if data.mobile else None
    if _is_set(data.guardian_id):
        guardian = None
        if data.guardian_id is not None:
            guardian = Contact.objects.filter(pk=data.guardian_id, erased_at__isnull=True).first()
            if guardian is None:
                raise InvalidInput("guardian_id", f"unknown contact {data.guardian_id}")
            if contact is not None and guardian.pk == contact.pk:
                raise InvalidInput("guardian_id", "a contact cannot be their own guardian")
        values["guardian"] = guardian
    if _is_set(data.home_centre):
        centre = None
        if data.home_centre:
            centre = Centre.objects.filter(brand=brand, key=data.home_centre).first()
            if centre is None:
                raise InvalidInput(
                    "home_centre", f"unknown centre {data.home_centre!r} for brand {brand.key}"
                )
        values["home_centre"] = centre
    if _is_set(data.tags):
        tags = [t.strip().lower() for t in (data.tags or []) if t and t.strip()]
        for tag in tags:
            if len(tag) > 60 or not all(ch.isalnum() or ch in "-_" for ch in tag):
                raise InvalidInput("tags", f"tag {tag!r} must be letters, digits, - or _ (at most 60)")
        clean.tags = sorted(set(tags))
    if _is_set(data.purchase_at):
        stamp = data.purchase_at
        if stamp is not None and not _plausible_instant(stamp):
            raise InvalidInput("purchase_at", "must be a date-time with a time zone, between 1900 and 2999")
        values["purchase_at"] = stamp
    return clean


def _set_tags(contact: Contact, tags: Iterable[str]) -> None:
    names = list(tags)
    existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=n) for n in names if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=names)}
    contact.tags.set([existing[n] for n in names])


def contact_create(*, data: ContactInput) -> Contact:
    if not data.brand:
        raise InvalidInput("brand", "is required")
    if not data.kind:
        raise InvalidInput("kind", "is required")
    brand = brand_get(data.brand)
    clean = _clean(data, brand=brand, contact=None)
    external_id = clean.values.get("external_id")
    with transaction.atomic():
        if external_id and Contact.objects.filter(brand=brand, external_id=external_id).exists():
            raise Conflict(f"a contact with external_id {external_id!r} already exists for brand {brand.key}")
        try:
            with transaction.atomic():
                contact = Contact.objects.create(brand=brand, **clean.values)
        except IntegrityError:
            raise Conflict(f"a contact with external_id {external_id!r} already exists") from None
        if clean.tags:
            _set_tags(contact, clean.tags)
    return contact


def contact_update(*, contact: Contact, data: ContactInput) -> Contact:
    """Change the given fields (rectification). The brand of a contact never changes."""
    if contact.erased_at is not None:
        raise Conflict(f"contact {contact.pk} is erased")
    if data.brand is not None and data.brand != contact.brand.key:
        raise InvalidInput("brand", "a contact cannot move to another brand")
    clean = _clean(data, brand=contact.brand, contact=contact)
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        external_id = clean.values.get("external_id")
        if (
            external_id
            and Contact.objects.filter(brand=locked.brand, external_id=external_id)
            .exclude(pk=locked.pk)
            .exists()
        ):
            raise Conflict(f"another contact has external_id {external_id!r}")
        for name, value in clean.values.items():
            setattr(locked, name, value)
        locked.save()
        if clean.tags is not None:
            _set_tags(locked, clean.tags)
    return locked


@dataclass
class ImportRowError:
    index: int
    external_id: str | None
    field: str
    message: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[ImportRowError] = field(default_factory=list)


def _validate_rows(
    rows: Sequence[ContactInput],
) -> tuple[list[tuple[Brand, CleanContact]], list[ImportRowError]]:
    brands = {b.key: b for b in Brand.objects.all()}
    cleaned: list[tuple[Brand, CleanContact]] = []
    errors: list[ImportRowError] = []
    seen: set[tuple[int, str]] = set()
    for index, row in enumerate(rows):
        external_id = row.external_id if _is_set(row.external_id) else None
        try:
            if not external_id or not str(external_id).strip():
                raise InvalidInput("external_id", "is required for an import (imports are idempotent on it)")
            if not row.brand or row.brand not in brands:
                raise InvalidInput("brand", f"unknown brand {row.brand!r}")
            if not row.kind:
                raise InvalidInput("kind", "is required")
            brand = brands[row.brand]
            clean = _clean(row, brand=brand, contact=None)
            marker = (brand.pk, clean.values["external_id"])
            if marker in seen:
                raise InvalidInput("external_id", "appears twice in this import")
            seen.add(marker)
            cleaned.append((brand, clean))
        except InvalidInput as exc:
            errors.append(ImportRowError(index, external_id, exc.field, exc.message))
    return cleaned, errors


def contacts_import(*, rows: Sequence[ContactInput], atomic: bool = True) -> ImportResult:
    """Upsert contacts by (brand, external_id). With ``atomic`` (the API), one bad row rejects
    the whole batch and nothing is written; otherwise valid rows are written and the bad ones
    reported (the CSV command). Consent and suppressions are never touched."""
    cleaned, errors = _validate_rows(rows)
    result = ImportResult(errors=errors)
    if errors and atomic:
        return result
    with transaction.atomic():
        for brand, clean in cleaned:
            external_id = clean.values["external_id"]
            existing = (
                Contact.objects.select_for_update().filter(brand=brand, external_id=external_id).first()
            )
            if existing is None:
                contact = Contact.objects.create(brand=brand, **clean.values)
                if clean.tags:
                    _set_tags(contact, clean.tags)
                result.created += 1
                continue
            changed = [name for name, value in clean.values.items() if getattr(existing, name) != value]
            tags_changed = (
                clean.tags is not None and sorted(existing.tags.values_list("name", flat=True)) != clean.tags
            )
            if changed:
                for name in changed:
                    setattr(existing, name, clean.values[name])
                existing.save()
            if tags_changed and clean.tags is not None:
                _set_tags(existing, clean.tags)
            if changed or tags_changed:
                result.updated += 1
            else:
                result.unchanged += 1
    return result


def visit_record(
    *,
    contact: Contact,
    kind: str,
    occurred_at: dt.datetime,
    centre: str | None = None,
    external_id: str | None = None,
) -> tuple[Visit, bool]:
    """Record a visit; idempotent on ``external_id``. Returns the visit and whether it is new.
    A new trial session or class booking plans the follow-ups of the brand's active rules, in
    the same transaction (comms.campaigns.followups)."""
    if contact.erased_at is not None:
        raise Conflict(f"contact {contact.pk} is erased")
    if kind not in VisitKind.values:
        raise InvalidInput("kind", f"must be one of {', '.join(VisitKind.values)}")
    if occurred_at > timezone.now() + dt.timedelta(minutes=5):
        raise InvalidInput("occurred_at", "lies in the future")
    centre_obj = None
    if centre:
        centre_obj = Centre.objects.filter(brand_id=contact.brand_id, key=centre).first()
        if centre_obj is None:
            raise InvalidInput("centre", f"unknown centre {centre!r} for this contact's brand")
    with transaction.atomic():
        if external_id:
            existing = Visit.objects.filter(contact=contact, external_id=external_id).first()
            if existing is not None:
                return existing, False
        visit = Visit.objects.create(
            contact=contact,
            kind=kind,
            occurred_at=occurred_at,
            centre=centre_obj,
            external_id=external_id or None,
        )
        # In the visit's transaction: what a receiver plans is rolled back with a failed visit.
        visit_recorded.send(sender=Visit, visit=visit)
    return visit, True
