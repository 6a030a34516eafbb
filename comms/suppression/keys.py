"""The keyed address hash (defined in ``comms.contacts.keys``, which contacts use to keep the
keys of their current addresses); the ledger's modules import it from here."""

from __future__ import annotations

from comms.contacts.keys import address_key, lock_id

__all__ = ["address_key", "lock_id"]
