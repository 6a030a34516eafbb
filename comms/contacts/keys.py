"""The keyed address hash: what the ledger and the suppression list know an address by.

It lives with the contacts because a contact carries the keys of its current addresses
(``Contact.email_key`` / ``mobile_key``), so the set-based gate can join suppressions in SQL.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from django.conf import settings


@functools.lru_cache(maxsize=4)
def _keyed(secret: str) -> hmac.HMAC:
    """The HMAC keyed with ``secret``, copied for each address (the key is set up once)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def address_key(channel: str, normalised_address: str) -> str:
    """HMAC-SHA256 of a normalised address under the server's address secret (hex).

    The channel kind is part of the message, so an email and a phone number can never collide.
    """
    kind = "email" if channel == "email" else "sms"
    mac = _keyed(settings.ADDRESS_KEY_SECRET).copy()
    mac.update(f"{kind}:{normalised_address}".encode())
    return mac.hexdigest()


def lock_id(key: str) -> int:
    """A signed 64-bit integer for PostgreSQL advisory locks, taken from the address key."""
    return int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True)
