"""The keyed address hash: what the ledger and the suppression list know an address by.

It lives with the contacts because a contact carries the keys of its current addresses
(``Contact.email_key`` / ``mobile_key``), so the set-based gate can join suppressions in SQL.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def address_key(channel: str, normalised_address: str) -> str:
    """HMAC-SHA256 of a normalised address under the server's address secret (hex).

    The channel kind is part of the message, so an email and a phone number can never collide.
    """
    kind = "email" if channel == "email" else "sms"
    message = f"{kind}:{normalised_address}".encode()
    return hmac.new(settings.ADDRESS_KEY_SECRET.encode(), message, hashlib.sha256).hexdigest()


def lock_id(key: str) -> int:
    """A signed 64-bit integer for PostgreSQL advisory locks, taken from the address key."""
    return int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True)
