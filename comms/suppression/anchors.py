"""Anchors: checkpoints written outside the database, signed, so a cut tail is noticed.

Someone who can rewrite the database (or its owner's triggers) can delete the newest events, move
the chain head back and delete the checkpoints that sealed them; the chain then verifies on its
own. Each checkpoint is therefore also written as one signed JSON line to the log and, when the
operator sets ``COMMS_LEDGER_ANCHOR_FILE``, appended to a file the database role cannot rewrite.
``verify_ledger --against FILE`` compares the database with those lines. Pure functions here;
the writing is in ``services.ledger_checkpoint`` and the comparison in ``selectors``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from comms.suppression.models import LedgerCheckpoint

ANCHOR_KIND = "comms.ledger.anchor"
ANCHOR_VERSION = 1
# A JSON log line carries the anchor under this key; a plain log line after this prefix.
LOG_FIELD = "ledger_anchor"
LOG_PREFIX = "ledger anchor: "


@dataclass(frozen=True)
class Anchor:
    line: int
    payload: dict[str, Any]

    @property
    def checkpoint_id(self) -> Any:
        return self.payload.get("checkpoint")


def _canonical(payload: dict[str, Any]) -> bytes:
    body = {key: value for key, value in payload.items() if key != "sig"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def anchor_signature(payload: dict[str, Any], secret: str) -> str:
    """HMAC-SHA256 over every field but ``sig``, in canonical form."""
    return hmac.new(secret.encode(), _canonical(payload), hashlib.sha256).hexdigest()


def anchor_payload(checkpoint: LedgerCheckpoint, secret: str) -> dict[str, Any]:
    """The signed record of one checkpoint: its id, time, hashes and the heads it sealed."""
    payload: dict[str, Any] = {
        "kind": ANCHOR_KIND,
        "v": ANCHOR_VERSION,
        "checkpoint": checkpoint.pk,
        "created_at": checkpoint.created_at.isoformat(),
        "prev_hash": checkpoint.prev_hash,
        "hash": checkpoint.hash,
        "heads": checkpoint.heads,
    }
    payload["sig"] = anchor_signature(payload, secret)
    return payload


def anchor_line(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def signature_ok(payload: dict[str, Any], secret: str) -> bool:
    sig = payload.get("sig")
    return isinstance(sig, str) and hmac.compare_digest(sig, anchor_signature(payload, secret))


def _anchor_in(text: str) -> dict[str, Any] | None:
    """The anchor in one line: an anchor line itself, a JSON log line, or a plain log line."""
    candidates: list[Any] = []
    with suppress(ValueError):
        candidates.append(json.loads(text))
    if LOG_PREFIX in text:
        with suppress(ValueError):
            candidates.append(json.loads(text.split(LOG_PREFIX, 1)[1]))
    for value in candidates:
        if isinstance(value, dict) and isinstance(value.get(LOG_FIELD), dict):
            value = value[LOG_FIELD]
        if isinstance(value, dict) and value.get("kind") == ANCHOR_KIND:
            return value
    return None


def anchors_parse(lines: Iterable[str]) -> Iterator[Anchor | int]:
    """Every anchor in ``lines`` (an anchor file or a log), in order; for a line that mentions an
    anchor but cannot be read, its line number instead. Other lines are skipped."""
    for number, text in enumerate(lines, start=1):
        if ANCHOR_KIND not in text:
            continue
        payload = _anchor_in(text.strip())
        yield Anchor(number, payload) if payload is not None else number
