"""Signed links for members: unsubscribe and preferences. Django's signing, not home-made crypto.

A token names one recipient and purpose: ``<contact>.<purpose>.<channel>.<address key prefix>``,
timestamped and signed with the server's secret under a salt of its own. The URL format is
``{COMMS_PUBLIC_BASE_URL}/u/{token}`` (unsubscribe) and ``/preferences/{token}``; SMS uses the
short form ``/s/{code}``, a random code stored on the delivery that leads to the same page.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac

SALT = "comms.web.unsubscribe"  # kept from comms.web.tokens: links already sent stay valid
_CHANNELS = {"e": "email", "s": "sms"}
_SHORT_ALPHABET = string.ascii_letters + string.digits


class BadToken(Exception):
    """Tampered, truncated or foreign."""


class ExpiredToken(BadToken):
    pass


@dataclass(frozen=True)
class MemberToken:
    contact_id: int
    purpose_id: int
    channel: str
    address_key_prefix: str


def make_token(*, contact_id: int, purpose_id: int, channel: str, address_key: str) -> str:
    payload = f"{contact_id}.{purpose_id}.{channel[0]}.{address_key[:12]}"
    return signing.TimestampSigner(salt=SALT).sign(payload)


def read_token(token: str, *, max_age: int | None = None) -> MemberToken:
    age = settings.MEMBER_LINK_MAX_AGE if max_age is None else max_age
    try:
        payload = signing.TimestampSigner(salt=SALT).unsign(token, max_age=age)
    except signing.SignatureExpired:
        raise ExpiredToken("the link has expired") from None
    except signing.BadSignature:
        raise BadToken("the link is not valid") from None
    parts = payload.split(".")
    if len(parts) != 4 or parts[2] not in _CHANNELS or not parts[0].isdigit() or not parts[1].isdigit():
        raise BadToken("the link is not valid")
    return MemberToken(int(parts[0]), int(parts[1]), _CHANNELS[parts[2]], parts[3])


def unsubscribe_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/u/{token}"


def preferences_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/preferences/{token}"


def new_short_code() -> str:
    return "".join(secrets.choice(_SHORT_ALPHABET) for _ in range(10))


def short_code_for(seed: str) -> str:
    """A short code derived from ``seed`` (a delivery's external_id) under the server's secret:
    the same on every attempt at the same message, unguessable without the secret."""
    number = int.from_bytes(salted_hmac(SALT + ".short", seed).digest()[:8], "big")
    chars = []
    for _ in range(10):
        number, index = divmod(number, len(_SHORT_ALPHABET))
        chars.append(_SHORT_ALPHABET[index])
    return "".join(chars)


def short_url(code: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/s/{code}"


# --- double opt-in ------------------------------------------------------------------------------
# A confirmation link names the pending grant(s) it confirms, under a salt of its own: a member
# link can never pass for a confirmation, nor the other way round.
CONFIRM_SALT = "comms.web.confirm"


def make_confirm_token(*, grant_ids: list[int]) -> str:
    if not grant_ids:
        raise ValueError("a confirmation link confirms at least one grant")
    return signing.TimestampSigner(salt=CONFIRM_SALT).sign(".".join(str(g) for g in sorted(grant_ids)))


def read_confirm_token(token: str, *, max_age: int | None = None) -> list[int]:
    age = settings.MEMBER_CONFIRM_MAX_AGE if max_age is None else max_age
    try:
        payload = signing.TimestampSigner(salt=CONFIRM_SALT).unsign(token, max_age=age)
    except signing.SignatureExpired:
        raise ExpiredToken("the link has expired") from None
    except signing.BadSignature:
        raise BadToken("the link is not valid") from None
    parts = payload.split(".")
    if not parts or not all(part.isdigit() for part in parts):
        raise BadToken("the link is not valid")
    return [int(part) for part in parts]


def confirm_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/confirm/{token}"


# --- self-service rights ----------------------------------------------------------------------
# A rights link proves the person holds the address right now: sent to it on request, valid for
# hours, under a salt of its own (a preferences link, valid for months, is not enough).
RIGHTS_SALT = "comms.web.rights"


def make_rights_token(*, contact_id: int, channel: str, address_key: str) -> str:
    return signing.TimestampSigner(salt=RIGHTS_SALT).sign(f"{contact_id}.{channel[0]}.{address_key[:12]}")


def read_rights_token(token: str, *, max_age: int | None = None) -> MemberToken:
    age = settings.RIGHTS_LINK_MAX_AGE if max_age is None else max_age
    try:
        payload = signing.TimestampSigner(salt=RIGHTS_SALT).unsign(token, max_age=age)
    except signing.SignatureExpired:
        raise ExpiredToken("the link has expired") from None
    except signing.BadSignature:
        raise BadToken("the link is not valid") from None
    parts = payload.split(".")
    if len(parts) != 3 or parts[1] not in _CHANNELS or not parts[0].isdigit():
        raise BadToken("the link is not valid")
    return MemberToken(int(parts[0]), 0, _CHANNELS[parts[1]], parts[2])


def rights_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/rights/{token}"
