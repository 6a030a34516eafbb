"""Which Mailchimp audience (list) belongs to which brand (``MAILCHIMP_AUDIENCES``)."""

from __future__ import annotations

from django.conf import settings

from comms.contacts.models import Brand


def enabled() -> bool:
    return bool(settings.MAILCHIMP_API_KEY and settings.MAILCHIMP_AUDIENCES)


def audience_for(brand: Brand) -> str | None:
    return settings.MAILCHIMP_AUDIENCES.get(brand.key) if enabled() else None


def brand_for(list_id: str) -> Brand | None:
    for brand_key, candidate in settings.MAILCHIMP_AUDIENCES.items():
        if candidate == list_id:
            return Brand.objects.filter(key=brand_key).first()
    return None
