"""Audience filters: validated JSON in, one set-based queryset out (never a loop over contacts)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from comms.contacts.models import Brand, Centre, Contact, ContactKind, Tag
from comms.errors import InvalidInput

AUDIENCE_FIELDS = {
    "kinds": "list of member, guest, lead",
    "centres": "list of centre keys of the brand",
    "tags": "list of tags; a contact with any of them matches",
    "last_visit_before": "date (YYYY-MM-DD): last visit before this day",
    "last_visit_after": "date (YYYY-MM-DD): last visit on or after this day",
    "age_min": "integer: at least this old",
    "age_max": "integer: at most this old",
    "contact_ids": "list of contact ids (a consent-refresh campaign names the people it asks)",
}
MAX_CONTACT_IDS = 100_000


def _date(field: str, value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput(f"audience.{field}", "must be a date (YYYY-MM-DD)") from None


def _list(field: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"audience.{field}", "must be a list of strings")
    return value


def _age(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 130:
        raise InvalidInput(f"audience.{field}", "must be a whole number of years (0–130)")
    return value


def audience_clean(audience: dict[str, Any], *, brand: Brand) -> dict[str, Any]:
    """Validate filters, naming the first bad field; returns the normalised filters."""
    if not isinstance(audience, dict):
        raise InvalidInput("audience", "must be an object of filters")
    unknown = sorted(set(audience) - set(AUDIENCE_FIELDS))
    if unknown:
        raise InvalidInput(
            f"audience.{unknown[0]}", f"unknown audience field; known fields: {', '.join(AUDIENCE_FIELDS)}"
        )
    clean: dict[str, Any] = {}
    if "kinds" in audience:
        kinds = _list("kinds", audience["kinds"])
        bad = [k for k in kinds if k not in ContactKind.values]
        if bad:
            raise InvalidInput("audience.kinds", f"unknown kind {bad[0]!r}")
        clean["kinds"] = sorted(set(kinds))
    if "centres" in audience:
        centres = _list("centres", audience["centres"])
        known = set(Centre.objects.filter(brand=brand, key__in=centres).values_list("key", flat=True))
        missing = [c for c in centres if c not in known]
        if missing:
            raise InvalidInput("audience.centres", f"unknown centre {missing[0]!r} for brand {brand.key}")
        clean["centres"] = sorted(set(centres))
    if "tags" in audience:
        tags = [t.lower() for t in _list("tags", audience["tags"])]
        known_tags = set(Tag.objects.filter(name__in=tags).values_list("name", flat=True))
        missing = [t for t in tags if t not in known_tags]
        if missing:
            raise InvalidInput("audience.tags", f"unknown tag {missing[0]!r}")
        clean["tags"] = sorted(set(tags))
    for field in ("last_visit_before", "last_visit_after"):
        if field in audience:
            clean[field] = _date(field, audience[field]).isoformat()
    for field in ("age_min", "age_max"):
        if field in audience:
            clean[field] = _age(field, audience[field])
    if "contact_ids" in audience:
        ids = audience["contact_ids"]
        if (
            not isinstance(ids, list)
            or len(ids) > MAX_CONTACT_IDS
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63 for i in ids)
        ):
            raise InvalidInput("audience.contact_ids", f"must be a list of at most {MAX_CONTACT_IDS} ids")
        clean["contact_ids"] = sorted(set(ids))
    if "age_min" in clean and "age_max" in clean and clean["age_min"] > clean["age_max"]:
        raise InvalidInput("audience.age_max", "is below age_min")
    return clean


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def audience_queryset(*, brand_id: int, channel: str, audience: dict[str, Any]) -> QuerySet[Contact]:
    """Contacts of the brand that match the filters and have an address for the channel."""
    contacts = Contact.objects.filter(brand_id=brand_id, erased_at__isnull=True)
    contacts = (
        contacts.exclude(email__isnull=True) if channel == "email" else contacts.exclude(mobile__isnull=True)
    )
    if "contact_ids" in audience:
        contacts = contacts.filter(pk__in=audience["contact_ids"])
    if audience.get("kinds"):
        contacts = contacts.filter(kind__in=audience["kinds"])
    if audience.get("centres"):
        contacts = contacts.filter(home_centre__key__in=audience["centres"])
    if audience.get("tags"):
        contacts = contacts.filter(tags__name__in=audience["tags"]).distinct()
    if "last_visit_before" in audience or "last_visit_after" in audience:
        contacts = contacts.annotate(last_visit=Max("visits__occurred_at"))
        tz = timezone.get_current_timezone()
        if "last_visit_before" in audience:
            start = dt.datetime.combine(dt.date.fromisoformat(audience["last_visit_before"]), dt.time(), tz)
            contacts = contacts.filter(Q(last_visit__lt=start))
        if "last_visit_after" in audience:
            start = dt.datetime.combine(dt.date.fromisoformat(audience["last_visit_after"]), dt.time(), tz)
            contacts = contacts.filter(last_visit__gte=start)
    today = timezone.localdate()
    if "age_min" in audience:
        contacts = contacts.filter(birth_date__lte=_years_before(today, audience["age_min"]))
    if "age_max" in audience:
        contacts = contacts.filter(birth_date__gt=_years_before(today, audience["age_max"] + 1))
    return contacts
