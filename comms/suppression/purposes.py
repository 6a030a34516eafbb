"""Purposes and their notice versions: created, edited and published here, and only here."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction

from comms.contacts.models import Brand
from comms.errors import InvalidInput
from comms.suppression.models import (
    Channel,
    Purpose,
    PurposeNotice,
)

# --- purposes -------------------------------------------------------------------------------


def purpose_create(
    *,
    brand: Brand,
    key: str,
    name: str,
    channels: Iterable[str],
    notice_text: str,
    allows_soft_opt_in: bool = False,
    marketing: bool = True,
    min_notice_version: int | None = None,
    consent_lifetime_days: int | None = None,
    created_by: User | None = None,
) -> Purpose:
    channel_set = set(channels)
    unknown = channel_set - set(Channel.values)
    if unknown:
        raise InvalidInput("channels", f"unknown channel(s): {', '.join(sorted(unknown))}")
    if not channel_set:
        raise InvalidInput("channels", "a purpose needs at least one channel")
    if not notice_text.strip():
        raise InvalidInput("notice_text", "a purpose needs the notice text people are shown")
    if min_notice_version is not None and min_notice_version > 1:
        raise InvalidInput("min_notice_version", "a new purpose has only notice version 1")
    with transaction.atomic():
        if Purpose.objects.filter(brand=brand, key=key).exists():
            raise InvalidInput("key", f"purpose {key!r} already exists for brand {brand.key}")
        purpose = Purpose.objects.create(
            brand=brand,
            key=key,
            name=name,
            allows_email=Channel.EMAIL in channel_set,
            allows_sms=Channel.SMS in channel_set,
            allows_soft_opt_in=allows_soft_opt_in,
            marketing=marketing,
            min_notice_version=min_notice_version,
            consent_lifetime_days=consent_lifetime_days,
        )
        PurposeNotice.objects.create(purpose=purpose, version=1, text=notice_text, created_by=created_by)
    return purpose


def purpose_update(
    *,
    purpose: Purpose,
    name: str | None = None,
    channels: Iterable[str] | None = None,
    allows_soft_opt_in: bool | None = None,
    min_notice_version: int | None = None,
    consent_lifetime_days: int | None = None,
    clear_min_notice_version: bool = False,
    clear_consent_lifetime: bool = False,
) -> Purpose:
    """Change a purpose's settings (never its notice text: see ``purpose_notice_publish``)."""
    with transaction.atomic():
        purpose = Purpose.objects.select_for_update().get(pk=purpose.pk)
        if name is not None:
            purpose.name = name
        if channels is not None:
            channel_set = set(channels)
            unknown = channel_set - set(Channel.values)
            if unknown or not channel_set:
                raise InvalidInput("channels", "must list email and/or sms")
            purpose.allows_email = Channel.EMAIL in channel_set
            purpose.allows_sms = Channel.SMS in channel_set
        if allows_soft_opt_in is not None:
            purpose.allows_soft_opt_in = allows_soft_opt_in
        if min_notice_version is not None:
            latest = purpose.notices.order_by("-version").values_list("version", flat=True).first() or 0
            if min_notice_version > latest:
                raise InvalidInput("min_notice_version", f"the latest notice version is {latest}")
            purpose.min_notice_version = min_notice_version
        elif clear_min_notice_version:
            purpose.min_notice_version = None
        if consent_lifetime_days is not None:
            purpose.consent_lifetime_days = consent_lifetime_days
        elif clear_consent_lifetime:
            purpose.consent_lifetime_days = None
        purpose.save()
    return purpose


def purpose_notice_publish(*, purpose: Purpose, text: str, created_by: User | None = None) -> PurposeNotice:
    """Publish a new version of the notice text; earlier consents keep pointing at theirs."""
    if not text.strip():
        raise InvalidInput("text", "the notice text cannot be empty")
    with transaction.atomic():
        locked = Purpose.objects.select_for_update().get(pk=purpose.pk)
        latest = locked.notices.order_by("-version").first()
        if latest is not None and latest.text == text:
            return latest
        return PurposeNotice.objects.create(
            purpose=locked, version=(latest.version + 1) if latest else 1, text=text, created_by=created_by
        )


