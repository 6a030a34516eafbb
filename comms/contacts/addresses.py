"""Normalising email addresses and mobile numbers: one normaliser for the whole service."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from comms.errors import InvalidInput

_MOBILE_TYPES = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}


def normalise_email(raw: str, *, field: str = "email") -> str:
    value = raw.strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        raise InvalidInput(field, "not a valid email address") from None
    return value


def normalise_mobile(raw: str, *, field: str = "mobile") -> str:
    """Return the E.164 form of a mobile number (Norway by default), or raise InvalidInput."""
    value = raw.strip()
    if not value or len(value) > 32 or not re.fullmatch(r"[+\d\s().-]+", value):
        raise InvalidInput(field, "not a phone number")
    try:
        number = phonenumbers.parse(value, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidInput(field, "not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(field, "not a valid phone number")
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidInput(field, "not a mobile number: SMS needs a mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_address(channel: str, raw: str, *, field: str = "address") -> str:
    if channel == "email":
        return normalise_email(raw, field=field)
    if channel == "sms":
        return normalise_mobile(raw, field=field)
    raise InvalidInput("channel", f"unknown channel {channel!r}")
