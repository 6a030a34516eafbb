"""LifeVision callback signatures: ``X-LV-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC covers ``"<t>.<raw body>"`` so neither the body nor the timestamp can be altered, and
``verify`` refuses timestamps more than ``tolerance`` seconds from our clock (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import re

HEADER = "X-LV-Signature"
DEFAULT_TOLERANCE = 300

_MAX_HEADER_LENGTH = 1024
_TIMESTAMP = re.compile(r"\d{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class SignatureError(Exception):
    """A callback's signature is missing, malformed, wrong or too old; answer 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-LV-Signature`` header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    if not secret:
        raise ValueError("a webhook secret is required to sign")
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify(
    secret: str, header: str | None, body: bytes, now: float, tolerance: int = DEFAULT_TOLERANCE
) -> None:
    """Raise ``SignatureError`` unless ``header`` signs ``body`` with ``secret`` within ``tolerance``.

    Several ``v1`` entries are allowed (secret rotation); one matching is enough.
    """
    if not secret:
        raise SignatureError("no webhook secret is configured")
    if not header:
        raise SignatureError("missing signature header")
    if len(header) > _MAX_HEADER_LENGTH:
        raise SignatureError("malformed signature header")
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed signature header")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value.lower())
        # Unknown schemes (a future v2) are ignored, as long as a v1 is present.
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise SignatureError("malformed signature header")
    if not signatures or not all(_HEX_DIGEST.fullmatch(candidate) for candidate in signatures):
        raise SignatureError("malformed signature header")
    timestamp = int(timestamps[0])
    expected = _digest(secret, body, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("signature does not match")
    if abs(now - timestamp) > tolerance:
        raise SignatureError("timestamp outside tolerance")
