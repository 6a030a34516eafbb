from __future__ import annotations

import json
import logging

from comms.core.logs import JsonFormatter, RedactingFormatter, looks_personal, redact
from tests.logcheck import RECORDER


def test_detector_finds_addresses_and_phone_numbers() -> None:
    assert looks_personal("to kari.nordmann@example.no failed") == ["kari.nordmann@example.no"]
    assert looks_personal("sms +4741234567 refused")
    assert looks_personal("sms 0047 412 34 567 refused")
    assert looks_personal("call 412 34 567")
    assert looks_personal("call 91234567")
    for clean in (
        "delivery 123 failed after 8 attempts",
        "2026-11-25 03:56:53,123 INFO x",
        "listening on 127.0.0.1:8000",
        "address key 7f3a9c0e12ab",
        "took 12345678 ms",
    ):
        assert looks_personal(clean) == [], clean


def test_formatters_mask_addresses() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "to %s and %s", ("a@b.no", "+4741234567"), None
    )
    assert "a@b.no" not in RedactingFormatter("%(message)s").format(record)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "to [email] and [phone]"
    assert entry["level"] == "INFO" and entry["logger"] == "x"
    assert redact("x@y.example") == "[email]"


def test_every_log_record_of_the_run_is_recorded() -> None:
    before = RECORDER.count
    logging.getLogger("comms.test").warning("log check marker %s", "ok")
    assert RECORDER.count == before + 1
    assert RECORDER in logging.getLogger().handlers
