"""The consent state: the gate's read model of the ledger, kept in step with every append.

``state_apply`` runs inside the transaction that appends the events (``appending.append_many``),
so the state is never behind a committed event. Each row of ``ConsentState`` holds, for one scope
level of one contact, the latest event of each kind by the fold's order (occurred_at, chain,
seq). Taking "the latest" is order-independent, so an event with an old ``occurred_at`` that
arrives late lands where the fold would put it without refolding anything.

``state_fold`` computes the same rows from the events alone (the reference), for the migration
that builds the state of existing data and for ``verify_ledger --state``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Exists, Model, OuterRef
from django.utils import timezone

from comms.contacts.keys import address_key
from comms.contacts.models import Contact
from comms.suppression.models import Action, ConsentEvent, ConsentState

# The events the gate's fold reads (DESIGN §3 rules 2–8).
SCOPE_ACTIONS = (
    Action.GRANT,
    Action.CONFIRM,
    Action.WITHDRAW,
    Action.OBJECT,
    Action.RESTRICT,
    Action.LIFT_RESTRICTION,
)
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
# Every column of a state row that the events determine (the rest is bookkeeping).
STATE_FIELDS = (
    "positive_event_id",
    "positive_order",
    "grant_event_id",
    "grant_basis",
    "grant_actor",
    "grant_actor_contact_id",
    "grant_opt_out_offered",
    "grant_notice_version",
    "grant_occurred_at",
    "pending_event_id",
    "pending_order",
    "withdrawal_event_id",
    "withdrawal_order",
    "objection_event_id",
    "objection_order",
    "restriction_event_id",
    "restriction_order",
    "restricted",
)

Level = tuple[int, str, int | None]  # (contact id, channel or "", purpose id or None)


def order_key(occurred_at: datetime, chain: int, seq: int) -> str:
    """The fold's order as a fixed-width string of digits: comparing two keys as text compares
    (occurred_at, chain, seq)."""
    micros = (occurred_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros:020d}{chain:05d}{seq:019d}"


def event_order(event: Any) -> str:
    return order_key(event.occurred_at, event.chain, event.seq)


def level_of(event: Any) -> Level:
    """The state row an event belongs to. Refuses shapes the gate's SQL does not read (the
    services never write them), so state and fold can never part over one."""
    action, channel, purpose_id = event.action, event.channel, event.purpose_id
    if action in (Action.GRANT, Action.CONFIRM):
        if not channel or purpose_id is None:
            raise ValueError(f"a {action} names its channel and purpose")
    elif action == Action.WITHDRAW:
        if purpose_id is not None and not channel:
            raise ValueError("a withdrawal for one purpose names its channel")
    elif channel or purpose_id is not None:
        raise ValueError(f"an {action} applies to every channel and purpose")
    return (event.contact_id, channel, purpose_id)


def advance(row: Any, event: Any) -> bool:
    """Move ``row`` to ``event`` where it is the latest of its kind; True if anything changed."""
    key = event_order(event)
    action = event.action
    if action == Action.GRANT and event.pending_confirmation:
        if key > row.pending_order:
            row.pending_event_id, row.pending_order = event.pk, key
            return True
    elif action in (Action.GRANT, Action.CONFIRM):
        if key > row.positive_order:
            grant = event.confirms if action == Action.CONFIRM else event
            if grant is None:
                raise ValueError("a confirmation names the grant it confirms")
            notice = grant.notice
            row.positive_event_id, row.positive_order = event.pk, key
            row.grant_event_id = grant.pk
            row.grant_basis = grant.basis
            row.grant_actor = grant.actor
            row.grant_actor_contact_id = grant.actor_contact_id
            row.grant_opt_out_offered = grant.opt_out_offered
            row.grant_notice_version = notice.version if notice is not None else None
            row.grant_occurred_at = grant.occurred_at
            return True
    elif action == Action.WITHDRAW:
        if key > row.withdrawal_order:
            row.withdrawal_event_id, row.withdrawal_order = event.pk, key
            return True
    elif action == Action.OBJECT:
        if key > row.objection_order:
            row.objection_event_id, row.objection_order = event.pk, key
            return True
    elif action in (Action.RESTRICT, Action.LIFT_RESTRICTION) and key > row.restriction_order:
        row.restriction_event_id, row.restriction_order = event.pk, key
        row.restricted = action == Action.RESTRICT
        return True
    return False


def _stored_rows(contact_ids: Iterable[int]) -> list[ConsentState]:
    """Through the ORM: on PostgreSQL an append reads its rows in ``append.lock``."""
    return list(ConsentState.objects.filter(contact_id__in=sorted(set(contact_ids))))


def state_levels(contact_ids: Iterable[int]) -> dict[Level, ConsentState]:
    """The stored state rows of these contacts, by level."""
    return {(row.contact_id, row.channel, row.purpose_id): row for row in _stored_rows(contact_ids)}


def scope_blocked(levels: dict[Level, Any], contact_id: int, channel: str, purpose_id: int) -> bool:
    """Is an objection or a withdrawal in force for this scope (later, in the fold's order, than
    the latest grant made effective)? The same comparison the gate's SQL makes."""
    scope = levels.get((contact_id, channel, purpose_id))
    positive = scope.positive_order if scope is not None else ""
    everything = levels.get((contact_id, "", None))
    negatives = [
        row.withdrawal_order
        for row in (scope, levels.get((contact_id, channel, None)), everything)
        if row is not None
    ]
    if everything is not None:
        negatives.append(everything.objection_order)
    return any(order > positive for order in negatives)


def _blank(model: type[Model], level: Level, now: datetime) -> Any:
    contact_id, channel, purpose_id = level
    return model(contact_id=contact_id, channel=channel, purpose_id=purpose_id, updated_at=now)


def state_plan(
    events: Sequence[ConsentEvent], levels: dict[Level, Any], blank: Callable[[Level], Any]
) -> tuple[list[Any], list[Any]]:
    """Advance ``levels`` (the stored rows of the events' contacts, by level) by newly appended
    ``events``, in order; returns the rows to insert and the stored rows that changed."""
    created: dict[Level, Any] = {}
    changed: dict[Level, Any] = {}
    for event in events:
        if event.action not in SCOPE_ACTIONS or not event.contact_id:
            continue
        level = level_of(event)
        found = levels.get(level)
        if found is None:
            found = levels[level] = created[level] = blank(level)
        if advance(found, event) and level not in created:
            changed[level] = found
    return list(created.values()), list(changed.values())


def state_apply(events: Sequence[ConsentEvent]) -> None:
    """Bring the state in line with newly appended ``events`` through the ORM (SQLite; on
    PostgreSQL ``appending.append_many`` writes the state with the events in one statement).
    Same transaction as the append; the chain head locks serialise writers of one contact."""
    scoped = [event for event in events if event.action in SCOPE_ACTIONS and event.contact_id]
    if not scoped:
        return
    now = timezone.now()
    levels = state_levels({event.contact_id for event in scoped if event.contact_id})
    created, changed = state_plan(scoped, levels, lambda level: _blank(ConsentState, level, now))
    for row in changed:
        row.updated_at = now
    for row in created:
        row.save(force_insert=True)
    for row in changed:
        row.save(update_fields=[*STATE_FIELDS, "updated_at"])


def _scope_events(event_model: type[Model], contact_ids: Iterable[int]) -> Iterator[Any]:
    events: Iterator[Any] = (
        event_model.objects.filter(  # type: ignore[attr-defined]
            contact_id__in=list(contact_ids), action__in=SCOPE_ACTIONS
        )
        .select_related("notice", "confirms", "confirms__notice")
        .order_by("occurred_at", "chain", "seq")
        .iterator(chunk_size=5000)
    )
    return events


def state_fold(
    contact_ids: Iterable[int],
    *,
    event_model: type[Model] = ConsentEvent,
    state_model: type[Model] = ConsentState,
) -> dict[Level, Any]:
    """The state rows the events of these contacts imply (unsaved), from the events alone."""
    rows: dict[Level, Any] = {}
    now = timezone.now()
    for event in _scope_events(event_model, contact_ids):
        level = level_of(event)
        row = rows.get(level)
        if row is None:
            row = rows[level] = _blank(state_model, level, now)
        advance(row, event)
    return rows


def _contact_batches(event_model: type[Model], batch_size: int) -> Iterator[list[int]]:
    ids = (
        event_model.objects.filter(  # type: ignore[attr-defined]
            contact_id__isnull=False, action__in=SCOPE_ACTIONS
        )
        .values_list("contact_id", flat=True)
        .distinct()
        .order_by("contact_id")
    )
    last = 0
    while True:
        batch = list(ids.filter(contact_id__gt=last)[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1]


def state_rebuild(
    *,
    event_model: type[Model] = ConsentEvent,
    state_model: type[Model] = ConsentState,
    batch_size: int = 2000,
) -> int:
    """Build the state of existing events into an empty state table (the migration that
    introduced it). Returns the number of rows written."""
    written = 0
    for batch in _contact_batches(event_model, batch_size):
        rows = state_fold(batch, event_model=event_model, state_model=state_model)
        state_model.objects.bulk_create(rows.values(), batch_size=2000)  # type: ignore[attr-defined]
        written += len(rows)
    return written


@dataclass
class StateMismatch:
    contact_id: int
    channel: str
    purpose_id: int | None
    problem: str

    def describe(self) -> str:
        scope = f"{self.channel or 'all channels'}/{self.purpose_id or 'all purposes'}"
        return f"contact {self.contact_id} {scope}: {self.problem}"


def state_verify(*, batch_size: int = 2000) -> tuple[int, list[StateMismatch]]:
    """Refold every contact's events and compare with the stored state, row by row; also check
    that each contact's stored address keys are the keys of its addresses. Returns the number
    of contacts checked and every difference found."""
    mismatches: list[StateMismatch] = []
    checked = 0
    for batch in _contact_batches(ConsentEvent, batch_size):
        checked += len(batch)
        folded = state_fold(batch)
        stored = {
            (row.contact_id, row.channel, row.purpose_id): row
            for row in ConsentState.objects.filter(contact_id__in=batch)
        }
        for level in sorted(set(folded) | set(stored), key=lambda lv: (lv[0], lv[1], lv[2] or 0)):
            want, have = folded.get(level), stored.get(level)
            if have is None:
                mismatches.append(StateMismatch(*level, "missing: the ledger has events for it"))
            elif want is None:
                mismatches.append(StateMismatch(*level, "the ledger has no events for this row"))
            else:
                differ = [name for name in STATE_FIELDS if getattr(want, name) != getattr(have, name)]
                if differ:
                    mismatches.append(
                        StateMismatch(*level, f"differs from the ledger in {', '.join(differ)}")
                    )
    # State rows of contacts that have no scope events at all.
    # An anti-join (NOT EXISTS): a NOT IN over every event cannot be hashed within work_mem at
    # member-base size and turns quadratic.
    with_events = ConsentEvent.objects.filter(contact_id=OuterRef("contact_id"), action__in=SCOPE_ACTIONS)
    for row in ConsentState.objects.filter(~Exists(with_events)).iterator(chunk_size=batch_size):
        mismatches.append(
            StateMismatch(
                row.contact_id, row.channel, row.purpose_id, "the ledger has no events for this row"
            )
        )
    for contact in (
        Contact.objects.only("id", "email", "mobile", "email_key", "mobile_key")
        .order_by("id")
        .iterator(chunk_size=5000)
    ):
        for channel, address, key in (
            ("email", contact.email, contact.email_key),
            ("sms", contact.mobile, contact.mobile_key),
        ):
            expected = address_key(channel, address) if address else ""
            if key != expected:
                mismatches.append(
                    StateMismatch(
                        contact.pk, channel, None, "the stored address key is not the key of the address"
                    )
                )
    return checked, mismatches
