"""The lock that orders withdrawals against senders (DESIGN §3 "Immediately").

Senders take a *shared* transaction-level advisory lock on each recipient's address key around
the gate check and the hand-off to the provider; withdrawals, objections and suppressions take
the *exclusive* lock on the keys they affect before they write. So a withdrawal waits for every
in-flight send of that address, and every send that starts after it commits sees it.

Keys are always locked in sorted order so a batch sender and a withdrawal cannot deadlock.
On SQLite (the zero-setup default) the IMMEDIATE transaction mode already serialises writers,
so the functions only check that they run inside a transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from comms.suppression import bulk
from comms.suppression.keys import lock_id


def _lock(keys: Iterable[str], function: str) -> None:
    if not connection.in_atomic_block:
        raise RuntimeError("address locks are transaction-scoped: call them inside transaction.atomic()")
    ids = sorted({lock_id(key) for key in keys if key})
    if not ids or connection.vendor != "postgresql":
        return
    # One round trip for the whole batch; ORDER BY keeps the acquisition order sorted. A
    # prepared statement: it runs before every send batch and every withdrawal.
    bulk.run(f"SELECT {function}(k) FROM unnest(%s::bigint[]) AS t(k) ORDER BY k", [ids])


def sender_lock(keys: Iterable[str]) -> None:
    """Hold the shared lock on these address keys until the current transaction ends."""
    _lock(keys, "pg_advisory_xact_lock_shared")


def withdrawal_lock(keys: Iterable[str]) -> None:
    """Hold the exclusive lock on these address keys until the current transaction ends."""
    _lock(keys, "pg_advisory_xact_lock")
