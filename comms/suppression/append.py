"""The ledger's append on PostgreSQL in two round trips (migration ``suppression/0015``).

``lock`` calls ``comms_ledger_prelude``: the address locks, the ledger's count of chains (read
under the lock that a change of it waits for), the heads of the chains the contacts are on
(row-locked, in chain order), event ids, and — read under those locks — the consent state of the contacts
involved and the person-caused suppressions of the addresses. The caller decides on that (does
a grant wait for double opt-in?), ``appending.append_many`` hash-chains the events and advances
the state in memory, and ``write`` calls ``comms_ledger_write`` with JSON arrays of the rows.

SQLite (the zero-setup default) does not come here: ``services`` keeps the ORM path there.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import orjson

from comms.suppression import bulk
from comms.suppression.models import GENESIS_HASH, PERSON_CAUSED_REASONS, ConsentEvent, ConsentState

Level = tuple[int, str, int | None]

_REASONS = sorted(reason.value for reason in PERSON_CAUSED_REASONS)
_REASONS_ARRAY = "{" + ",".join(_REASONS) + "}"
# Each state row's columns, and what a new row holds before its first event.
_STATE_COLUMNS = [f.attname for f in ConsentState._meta.concrete_fields]
_STATE_DEFAULTS = {
    f.attname: f.get_default()
    for f in ConsentState._meta.concrete_fields
    if f.attname not in ("id", "contact_id", "channel", "purpose_id", "updated_at")
}
EVENT_COLUMNS = [f.attname for f in ConsentEvent._meta.concrete_fields]
_EVENT_COLUMN_SET = frozenset(EVENT_COLUMNS)


class Broken(Exception):
    """A chain's head is missing while the chain has events (``services.LedgerBroken``)."""

    def __init__(self, chain: int) -> None:
        super().__init__(chain)
        self.chain = chain


@dataclass
class Locked:
    """What an append may rely on until its transaction ends."""

    chains: int  # the ledger's count of chains (``LedgerLayout``): contact id mod it is the chain
    heads: dict[int, list[Any]]  # chain -> [seq, hash], moved along as events are chained
    ids: list[int]  # event ids drawn for this append, in order
    levels: dict[Level, Any]  # the contacts' state rows, by level
    contacts: frozenset[int]  # whose state rows ``levels`` holds (all of them)
    suppressed: set[tuple[str, str, int | None]] = field(default_factory=set)  # (key, channel, brand)
    # The latest notice version of each purpose asked for (``notice_purposes``) that has one.
    notices: dict[int, tuple[int, int]] = field(default_factory=dict)  # purpose -> (notice id, version)

    def person_suppressed(self, *, key: str, channel: str, brand_id: int) -> bool:
        """An active suppression the person caused, for this address in this channel and brand."""
        return any(
            (key, each, brand) in self.suppressed for each in (channel, "all") for brand in (brand_id, None)
        )


def event_instance(values: dict[str, Any], **related: Any) -> ConsentEvent:
    """A saved-looking ``ConsentEvent`` from its column values (every one of ``EVENT_COLUMNS``), with
    the ``related`` objects (contact, purpose, …) cached as Django caches a loaded relation. It
    skips ``Model.__init__`` and its per-field descriptors (no signals: nothing listens to a
    ledger event's ``pre_init``/``post_init``); an import builds thousands of them."""
    event = ConsentEvent.__new__(ConsentEvent)
    if values.keys() != _EVENT_COLUMN_SET:
        raise ValueError(f"an event needs exactly the columns {sorted(_EVENT_COLUMN_SET)}")
    event.__dict__.update(values)
    event._state = state = bulk.loaded_state()
    cache = state.fields_cache
    for name, obj in related.items():
        if obj is not None:
            cache[name] = obj
    return event


def state_row(values: dict[str, Any]) -> Any:
    """A state row as ``state.advance`` reads and moves it (not a model instance: an import
    handles thousands)."""
    return SimpleNamespace(**values)


def blank_state(level: Level, now: datetime) -> Any:
    contact_id, channel, purpose_id = level
    return SimpleNamespace(
        **_STATE_DEFAULTS,
        id=None,
        contact_id=contact_id,
        channel=channel,
        purpose_id=purpose_id,
        updated_at=now,
    )


def lock(
    *,
    contactless: bool,
    default_chains: int,
    events: int,
    contacts: Iterable[int] = (),
    address_locks: Iterable[int] = (),
    suppression_keys: Iterable[str] = (),
    notice_purposes: Iterable[int] = (),
) -> Locked:
    """Take the append's locks and read what it decides on (one statement); see the module.
    The chains locked are those of ``contacts`` by the ledger's own count (``LedgerLayout``;
    ``default_chains`` where none is recorded yet), and chain 0 when ``contactless``."""
    contact_ids = sorted(set(contacts))
    keys = sorted({key for key in suppression_keys if key})
    lock_ids = sorted(set(address_locks))
    (answer,) = bulk.run(
        "SELECT comms_ledger_prelude(%s::bigint[], %s::boolean, %s::int, %s::int, %s::bigint[], %s::text[],"
        " %s::text[], %s, %s::bigint[])",
        [
            pg_array(lock_ids),
            contactless,
            default_chains,
            events,
            pg_array(contact_ids),
            pg_array(keys),
            _REASONS_ARRAY,
            GENESIS_HASH,
            pg_array(sorted(set(notice_purposes))),
        ],
    )[0]
    # Django's PostgreSQL backend loads jsonb as text (its JSONField decodes it).
    result = orjson.loads(answer) if isinstance(answer, str) else answer
    if "broken" in result:
        raise Broken(int(result["broken"]))
    levels = {
        (row["contact_id"], row["channel"], row["purpose_id"]): state_row(row) for row in result["states"]
    }
    return Locked(
        chains=int(result["chains"]),
        heads={chain: [seq, head_hash] for chain, seq, head_hash in result["heads"]},
        ids=list(result["ids"]),
        levels=levels,
        contacts=frozenset(contact_ids),
        suppressed={(key, channel, brand) for key, channel, brand in result["suppressed"]},
        notices={purpose_id: (notice_id, version) for purpose_id, notice_id, version in result["notices"]},
    )


def _json_rows(rows: Iterable[Any], columns: Sequence[str]) -> str:
    """Rows as JSON objects of ``columns``, read straight from their ``__dict__`` (the hot path
    of every append). orjson writes instants as RFC 3339 with their offset, as ``isoformat``."""
    names = tuple(columns)
    if len(names) < 2:  # itemgetter of one name returns the value, not a tuple
        raise ValueError("a row has at least two columns")
    values = operator.itemgetter(*names)
    return orjson.dumps([dict(zip(names, values(obj.__dict__), strict=True)) for obj in rows]).decode()


def pg_array(values: Iterable[Any]) -> str:
    """A PostgreSQL array literal (``%s::bigint[]``, ``%s::text[]``): psycopg passes one string
    instead of inspecting and dumping every element."""
    parts = []
    for value in values:
        text = str(value)
        parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def write(
    *,
    events: Sequence[ConsentEvent],
    evidence: Sequence[dict[str, Any]],
    heads: dict[int, list[Any]],
    now: datetime,
    state_new: Sequence[Any],
    state_changed: Sequence[Any],
) -> None:
    """Insert the events and their evidence, move the heads, write the state (one statement)."""
    state_new_columns = [name for name in _STATE_COLUMNS if name != "id"]
    bulk.run(
        "SELECT comms_ledger_write(%s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb)",
        [
            _json_rows(events, EVENT_COLUMNS),
            orjson.dumps(evidence).decode(),
            orjson.dumps(
                [
                    {"chain": chain, "seq": seq, "hash": head_hash, "updated_at": now}
                    for chain, (seq, head_hash) in sorted(heads.items())
                ]
            ).decode(),
            _json_rows(state_new, state_new_columns),
            _json_rows(state_changed, _STATE_COLUMNS),
        ],
    )
