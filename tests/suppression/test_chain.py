"""The canonical form an event's hash covers is byte for byte what it has always been: the fast
writer (orjson) and the fast instant must give exactly the reference form (``json`` with
``strftime``), or events sealed before would no longer verify. No database needed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comms.suppression import chain
from comms.suppression.models import ConsentEvent


def _sealed_form(event: ConsentEvent) -> str:
    """The canonical form as the first ledger wrote it (a frozen copy of that code)."""

    def instant(value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    payload: dict[str, Any] = {
        "v": 1,
        "chain": event.chain,
        "seq": event.seq,
        "contact": event.contact_id,
        "brand": event.brand_id,
        "address_key": event.address_key,
        "channel": event.channel,
        "purpose": event.purpose_id,
        "action": event.action,
        "basis": event.basis,
        "source": event.source,
        "actor": event.actor,
        "actor_user": event.actor_user_id,
        "actor_contact": event.actor_contact_id,
        "recorded_by": event.recorded_by,
        "notice": event.notice_id,
        "confirms": event.confirms_id,
        "pending_confirmation": event.pending_confirmation,
        "opt_out_offered": event.opt_out_offered,
        "reason": event.reason,
        "occurred_at": instant(event.occurred_at),
        "recorded_at": instant(event.recorded_at),
        "evidence_hash": event.evidence_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _event(
    text: str = "staff:anne",
    occurred_at: datetime | None = None,
    recorded_at: datetime | None = None,
    **fields: Any,
) -> ConsentEvent:
    values: dict[str, Any] = {
        "chain": 3,
        "seq": 41,
        "contact_id": 7,
        "brand_id": 2,
        "address_key": "ab" * 32,
        "channel": "email",
        "purpose_id": 5,
        "action": "grant",
        "basis": "consent",
        "source": "import",
        "actor": "staff",
        "actor_user_id": None,
        "actor_contact_id": None,
        "recorded_by": text,
        "notice_id": 9,
        "confirms_id": None,
        "pending_confirmation": False,
        "opt_out_offered": True,
        "reason": text[::-1],
        "occurred_at": occurred_at or datetime(2026, 11, 30, 16, 34, 3, 782570, tzinfo=UTC),
        "recorded_at": recorded_at or datetime(2026, 12, 3, 8, 0, tzinfo=UTC),
        "evidence_hash": "",
        "prev_hash": "cd" * 32,
    }
    values.update(fields)
    return ConsentEvent(**values)


def _agrees(event: ConsentEvent) -> None:
    sealed = _sealed_form(event)
    assert chain.canonical_event(event) == sealed
    expected = hashlib.sha256(f"{event.prev_hash}\n{sealed}".encode()).hexdigest()
    assert chain.event_hash(event) == expected


@pytest.mark.parametrize("code", range(128))
def test_every_ascii_character_is_written_as_the_reference_form_writes_it(code: int) -> None:
    _agrees(_event(f"{chr(code)}a{chr(code)}\\{chr(code)}"))


@pytest.mark.parametrize(
    "text",
    [
        "Ærlig Østby-Åsen",
        "emoji \U0001f600 here",
        "line\u2028sep",
        "lone \ud800 surrogate",
        "\x7f",
        "tab\tnew\nline",
    ],
)
def test_text_the_fast_writer_cannot_write_alike_falls_back_to_the_reference(text: str) -> None:
    _agrees(_event(text))


@pytest.mark.parametrize(
    "instant",
    [
        datetime(2026, 1, 1, tzinfo=UTC),  # no microseconds
        datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=ZoneInfo("Europe/Oslo")),
        datetime(2026, 6, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC),  # strftime writes no leading zero
        datetime(1, 1, 1, 0, 0, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_instants_are_written_as_the_reference_writes_them(instant: datetime) -> None:
    _agrees(_event(occurred_at=instant, recorded_at=instant))


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=40),
    occurred=st.datetimes(  # hypothesis bounds are naive; the values get UTC
        min_value=datetime(1, 1, 2),  # noqa: DTZ001
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    numbers=st.tuples(
        st.integers(0, 32767), st.integers(1, 2**62), st.one_of(st.none(), st.integers(1, 2**62))
    ),
    flags=st.tuples(st.booleans(), st.booleans()),
)
def test_any_event_has_the_reference_form(
    text: str, occurred: datetime, numbers: tuple[int, int, int | None], flags: tuple[bool, bool]
) -> None:
    chain_number, seq, confirms = numbers
    _agrees(
        _event(
            text,
            occurred_at=occurred,
            chain=chain_number,
            seq=seq,
            confirms_id=confirms,
            pending_confirmation=flags[0],
            opt_out_offered=flags[1],
        )
    )
