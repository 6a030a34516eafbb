"""Canonical serialisation and hashing of ledger events and their evidence (pure functions)."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from comms.suppression.models import ConsentEvent

# Bump only together with a migration that re-seals nothing: old events keep their version's form.
CANONICAL_VERSION = 1


@functools.lru_cache(maxsize=4096)
def _instant(value: datetime) -> str:
    """An instant in the canonical form (UTC, microseconds, ``Z``). Cached: the events of one
    append share their ``recorded_at``, and an import's rows often their ``occurred_at``."""
    if value.tzinfo is UTC and value.year >= 1000:  # the services' own instants: no conversion
        return value.isoformat(timespec="microseconds")[:-6] + "Z"  # (strftime pads no year < 1000)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# The canonical form's keys and the event's attribute each is read from.
_FIELDS = (
    ("chain", "chain"),
    ("seq", "seq"),
    ("contact", "contact_id"),
    ("brand", "brand_id"),
    ("address_key", "address_key"),
    ("channel", "channel"),
    ("purpose", "purpose_id"),
    ("action", "action"),
    ("basis", "basis"),
    ("source", "source"),
    ("actor", "actor"),
    ("actor_user", "actor_user_id"),
    ("actor_contact", "actor_contact_id"),
    ("recorded_by", "recorded_by"),
    ("notice", "notice_id"),
    ("confirms", "confirms_id"),
    ("pending_confirmation", "pending_confirmation"),
    ("opt_out_offered", "opt_out_offered"),
    ("reason", "reason"),
    ("evidence_hash", "evidence_hash"),
)
_ATTRIBUTES = frozenset(attribute for _, attribute in _FIELDS) | {"occurred_at", "recorded_at"}


def _payload(event: ConsentEvent) -> dict[str, Any]:
    values = event.__dict__
    if not values.keys() >= _ATTRIBUTES:  # a deferred field: through the model's descriptors
        values = {attribute: getattr(event, attribute) for attribute in _ATTRIBUTES}
    # Straight from the instance's __dict__: a foreign key's descriptor costs more than the read.
    payload: dict[str, Any] = {key: values[attribute] for key, attribute in _FIELDS}
    payload["v"] = CANONICAL_VERSION
    payload["occurred_at"] = _instant(values["occurred_at"])
    payload["recorded_at"] = _instant(values["recorded_at"])
    return payload


def _reference_form(payload: dict[str, Any]) -> str:
    """The canonical form's definition: sorted keys, no spaces, every character outside
    printable ASCII escaped (``\\uXXXX``)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _canonical_bytes(event: ConsentEvent) -> bytes:
    """``_reference_form`` of the event, as ASCII bytes. orjson writes the same bytes ten times
    faster whenever its output is printable ASCII (it escapes quotes, backslashes and control
    characters exactly as ``json`` does: ``test_chain.py`` checks every ASCII character); where
    it is not (a non-ASCII letter, DEL), or orjson refuses the value, ``json`` writes it."""
    payload = _payload(event)
    try:
        out = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # a lone surrogate, an integer past 64 bits
        out = b"\x80"
    if out.isascii() and b"\x7f" not in out:
        return out
    return _reference_form(payload).encode()


def canonical_event(event: ConsentEvent) -> str:
    """The exact bytes (as text) that an event's hash covers: every field but id and hash."""
    return _canonical_bytes(event).decode()


def event_hash(event: ConsentEvent) -> str:
    """SHA-256 over the previous event's hash and this event's canonical form."""
    return hashlib.sha256(event.prev_hash.encode() + b"\n" + _canonical_bytes(event)).hexdigest()


def _ip(value: str | None) -> str | None:
    """Python's text form of an IP address. What is stored may spell the same address another way
    (PostgreSQL writes ``::ffff:1.2.3.4`` where Python writes ``::ffff:102:304``, and an IPv6 zone
    id is not stored), so the hash covers the address, not its spelling. Idempotent on Python's
    form, so hashes sealed before this normalisation still verify."""
    if not value:
        return value
    try:
        return str(ipaddress.ip_address(value.split("%", 1)[0]))
    except ValueError:
        return value


def evidence_hash(*, ip: str | None, user_agent: str, proof_sha256: str) -> str:
    payload = {"ip": _ip(ip), "user_agent": user_agent, "proof_sha256": proof_sha256}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def heads_hash(prev_hash: str, heads: dict[str, list[Any]]) -> str:
    body = json.dumps(heads, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()
