"""Structured logs that never carry a raw email address or phone number.

Code logs ids and address keys, not addresses (tests/logcheck.py fails the test run on any log
line that looks like one). As a second line of defence the formatters here mask anything that
still looks like an address before the line leaves the process.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# E.164 (+47…, 00 47…) and bare Norwegian mobile/landline numbers (8 digits, optionally spaced).
PHONE_RE = re.compile(
    r"(?<![\w.:/-])(?:\+|00)[1-9](?:[ \-]?\d){6,14}(?![\w.])"
    r"|(?<![\w.:/+-])[49]\d{2}[ ]?\d{2}[ ]?\d{3}(?![\w.:/-])"
)


def looks_personal(text: str) -> list[str]:
    """The substrings of ``text`` that look like an email address or a phone number."""
    return [m.group(0) for m in EMAIL_RE.finditer(text)] + [m.group(0) for m in PHONE_RE.finditer(text)]


def redact(text: str) -> str:
    text = EMAIL_RE.sub("[email]", text)
    return PHONE_RE.sub("[phone]", text)


class RedactingFormatter(logging.Formatter):
    """The plain formatter, with addresses masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (masked), exception (masked)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "process": record.process,
        }
        # A ledger anchor (comms/suppression/anchors.py) travels as structured data, unmasked: it
        # holds hashes and numbers only, and verify_ledger --against reads it back from the log.
        anchor = getattr(record, "ledger_anchor", None)
        if isinstance(anchor, dict):
            entry["ledger_anchor"] = anchor
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)
