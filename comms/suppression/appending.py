"""The ledger's append: who records (``Principal``) and with what proof (``Evidence``), the
hash chains and their heads, the one function that appends events (``append_many``: the chain
heads row-locked in chain order, events hash-chained, evidence, heads and consent state written
in the caller's transaction), the listeners that mirror events elsewhere, and checkpoints.

On PostgreSQL an append is two statements (``comms/suppression/append.py``); SQLite, the
zero-setup default, takes the same steps through the ORM.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from comms.contacts.models import Brand, Contact
from comms.errors import InvalidInput
from comms.suppression import anchors, append, chain
from comms.suppression.keys import lock_id
from comms.suppression.models import (
    GENESIS_HASH,
    MAX_CHAINS,
    ChainHead,
    ConsentEvent,
    ConsentEvidence,
    LedgerCheckpoint,
    LedgerLayout,
    Purpose,
    PurposeNotice,
)
from comms.suppression.state import (
    state_apply,
    state_plan,
)

logger = logging.getLogger(__name__)

# How far in the future a client clock may put occurred_at before we call it an error.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Evidence:
    """What proves an event: the person's IP and user agent, and the SHA-256 of a proof file."""

    ip: str | None = None
    user_agent: str = ""
    proof_sha256: str = ""

    def is_empty(self) -> bool:
        return not (self.ip or self.user_agent or self.proof_sha256)


@dataclass(frozen=True)
class Principal:
    """Who records an event: the actor kind plus the staff user, guardian or API key behind it."""

    actor: str
    user: User | None = None
    guardian: Contact | None = None
    recorded_by: str = ""


# Integrations that mirror the ledger elsewhere (Mailchimp) register a listener here. It is
# called inside the appending transaction with the new event, so it can read the contact as it
# is now (before an erasure blanks it) and schedule its own work with ``transaction.on_commit``.
LedgerListener = Callable[[ConsentEvent], None]
_listeners: list[LedgerListener] = []


def ledger_listen(listener: LedgerListener) -> None:
    """Register ``listener`` for every event appended from now on (idempotent)."""
    if listener not in _listeners:
        _listeners.append(listener)


# --- the chain ------------------------------------------------------------------------------


def chain_for(contact_id: int | None, chains: int) -> int:
    """The chain a contact's events go to, on a ledger of ``chains`` chains (``ledger_chains``;
    an append takes the count from its lock)."""
    return (contact_id or 0) % chains


def _recorded_chains(using: str = "default") -> int | None:
    return LedgerLayout.objects.using(using).filter(pk=1).values_list("chains", flat=True).first()


def ledger_chains(*, using: str = "default") -> int:
    """The number of chains the ledger runs on (``LedgerLayout``), or ``COMMS_LEDGER_CHAINS``
    where nothing has been recorded yet (the first append records it). A hint outside an append:
    an append reads it again under its lock."""
    recorded = _recorded_chains(using)
    return recorded if recorded is not None else settings.LEDGER_CHAINS


def ledger_chains_set(*, chains: int, set_by: str, using: str = "default") -> int | None:
    """Make the ledger run on ``chains`` chains from this commit on; returns the count before
    (None: none was recorded). On PostgreSQL it first takes EXCLUSIVE on the chain heads' table:
    it waits for the appends in flight, and every append after it waits for it and then reads
    the new count (``comms_ledger_prelude``). The events already appended stay where they are;
    a contact's later events go to its chain by the new count. Needs UPDATE on the layout (the
    owning role: ``manage.py release``); the service role may only record a missing count."""
    if not 1 <= chains <= MAX_CHAINS:
        raise InvalidInput("chains", f"must be between 1 and {MAX_CHAINS}")
    db = connections[using]
    with transaction.atomic(using=using):
        if db.vendor == "postgresql":
            with db.cursor() as cursor:
                cursor.execute("LOCK TABLE suppression_chainhead IN EXCLUSIVE MODE")
        # (Two changes queue on that table lock; SQLite has one writer.)
        before = _recorded_chains(using)
        if before != chains:
            layout = LedgerLayout(pk=1, chains=chains, set_at=timezone.now(), set_by=set_by[:100])
            layout.save(using=using, force_insert=before is None, force_update=before is not None)
            # A change of a recorded count is worth an operator's attention; the first record is not.
            logger.log(
                logging.INFO if before is None else logging.WARNING,
                "ledger: %s chain(s) from now on (was %s), set by %s",
                chains,
                "not recorded" if before is None else before,
                set_by,
            )
    return before


_warned_chains: set[tuple[int, int]] = set()


def _warn_other_count(recorded: int) -> None:
    """Once per process: its COMMS_LEDGER_CHAINS is not the count the ledger runs on."""
    mine = settings.LEDGER_CHAINS
    if recorded != mine and (recorded, mine) not in _warned_chains:
        _warned_chains.add((recorded, mine))
        logger.warning(
            "COMMS_LEDGER_CHAINS is %s here but the ledger runs on %s chain(s): appending as the ledger "
            "says; `manage.py release` (or `manage.py ledger_chains --set N`) changes the count",
            mine,
            recorded,
        )


def _orm_chains() -> int:
    """SQLite (one writer at a time, inside the append's transaction): the recorded count, or
    this process's value recorded now."""
    recorded = _recorded_chains()
    if recorded is None:
        recorded = settings.LEDGER_CHAINS
        LedgerLayout.objects.create(pk=1, chains=recorded, set_at=timezone.now(), set_by="the first append")
    _warn_other_count(recorded)
    return recorded


class LedgerBroken(RuntimeError):
    """The ledger is not as its own guards leave it (a chain head is gone): appending would fork
    or restart a chain, so nothing is appended until an operator has run ``verify_ledger``."""


def locked_heads(chain_numbers: Sequence[int]) -> dict[int, ChainHead]:
    """Row-lock the heads of these chains through the ORM, in chain order (SQLite; on PostgreSQL
    ``lock_for_append`` takes them in its one statement). A chain's head is created at seq 0
    only while the chain has no events: a head that vanished from a chain with events is
    refused, never recreated (that would restart the chain)."""
    return {number: _locked_head_orm(number) for number in sorted(set(chain_numbers))}


def _locked_head_orm(chain_number: int) -> ChainHead:
    """SQLite (the zero-setup default, one writer at a time): the same rule through the ORM."""
    head = ChainHead.objects.select_for_update().filter(chain=chain_number).first()
    if head is None:
        try:
            with transaction.atomic():
                ChainHead.objects.create(chain=chain_number, seq=0, hash=GENESIS_HASH)
        except IntegrityError:
            pass  # another transaction created it first; lock theirs
        head = ChainHead.objects.select_for_update().get(chain=chain_number)
    if head.seq == 0 and ConsentEvent.objects.filter(chain=chain_number).exists():
        raise LedgerBroken(f"the head of chain {chain_number} is missing but the chain has events")
    return head


@dataclass
class NewEvent:
    """One event to append: what the caller knows; the chain fields are filled in here."""

    action: str
    source: str
    principal: Principal
    contact: Contact | None = None
    brand: Brand | None = None
    key: str = ""
    channel: str = ""
    purpose: Purpose | None = None
    basis: str = ""
    notice: PurposeNotice | None = None
    confirms: ConsentEvent | None = None
    pending_confirmation: bool = False
    opt_out_offered: bool = False
    reason: str = ""
    occurred_at: datetime | None = None
    evidence: Evidence | None = None


def append_one(*, locked: append.Locked | None = None, **fields: Any) -> ConsentEvent:
    """Append one event to its chain (see ``append_many``)."""
    return append_many([NewEvent(**fields)], locked=locked)[0]


def lock_for_append(
    contacts: Sequence[Contact | None],
    *,
    events: int,
    address_locks: Iterable[str] = (),
    suppression_keys: Iterable[str] = (),
    notice_purposes: Iterable[int] = (),
) -> append.Locked:
    """PostgreSQL: take an append's locks (address keys, then chain heads) and read, under them,
    the state and suppressions it decides on; one round trip (``append.lock``). Call it inside
    the transaction, before deciding, and hand the result to ``append_many``."""
    try:
        locked = append.lock(
            contactless=not contacts or any(contact is None for contact in contacts),
            default_chains=settings.LEDGER_CHAINS,
            events=events,
            contacts=[contact.id for contact in contacts if contact is not None],
            address_locks=[lock_id(key) for key in address_locks if key],
            suppression_keys=suppression_keys,
            notice_purposes=notice_purposes,
        )
    except append.Broken as exc:
        raise LedgerBroken(
            f"the head of chain {exc.chain} is missing but the chain has events: "
            "run verify_ledger; nothing is appended to a chain without its head"
        ) from None
    _warn_other_count(locked.chains)
    return locked


def append_many(new_events: Sequence[NewEvent], *, locked: append.Locked | None = None) -> list[ConsentEvent]:
    """Append events, in the order given, to their contacts' chains in one go: the heads of the
    chains involved are row-locked (in chain order, so two bulk appends cannot deadlock), the
    events hash-chained in memory and inserted together with their evidence, the heads moved,
    and the consent state brought in line, all in the caller's transaction. On PostgreSQL
    ``locked`` is what the caller's ``lock_for_append`` took (else it is taken here)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger appends must run inside a transaction")
    now = timezone.now()
    for new in new_events:
        if (new.occurred_at or now) > now + CLOCK_SKEW:
            raise InvalidInput("occurred_at", "lies in the future")
    if connection.vendor != "postgresql":
        return _append_many_orm(new_events, now)
    if locked is None:
        locked = lock_for_append([new.contact for new in new_events], events=len(new_events))
    if len(locked.ids) < len(new_events):
        raise RuntimeError("the append's lock drew fewer event ids than it has events")
    heads = locked.heads
    events: list[ConsentEvent] = []
    evidence_rows: list[dict[str, Any]] = []
    ids = iter(locked.ids)
    chains = locked.chains
    for new in new_events:
        contact = new.contact
        chain_number = chain_for(contact.id if contact else None, chains)
        head = heads[chain_number]  # KeyError: the caller locked other chains than it appends to
        if contact is not None and contact.id not in locked.contacts:
            raise RuntimeError("the append's lock did not read this contact's state")
        evidence = new.evidence if new.evidence is not None and not new.evidence.is_empty() else None
        event = append.event_instance(
            {"id": next(ids), **_event_fields(new, chain_number, head[0] + 1, head[1], now, evidence)},
            # The related objects the caller holds, so listeners and callers read no row again.
            contact=contact,
            purpose=new.purpose,
            notice=new.notice,
            confirms=new.confirms,
        )
        event.hash = chain.event_hash(event)
        head[0], head[1] = event.seq, event.hash
        events.append(event)
        if evidence:
            evidence_rows.append(
                {
                    "event_id": event.id,
                    "ip": evidence.ip,
                    "user_agent": evidence.user_agent,
                    "proof_sha256": evidence.proof_sha256,
                    "redacted_at": None,
                }
            )
    created, changed = state_plan(events, locked.levels, lambda level: append.blank_state(level, now))
    for row in changed:
        row.updated_at = now
    append.write(
        events=events, evidence=evidence_rows, heads=heads, now=now, state_new=created, state_changed=changed
    )
    for event in events:
        for listener in _listeners:
            listener(event)
    return events


def _event_fields(
    new: NewEvent, chain_number: int, seq: int, prev_hash: str, now: datetime, evidence: Evidence | None
) -> dict[str, Any]:
    """The columns of the event ``new`` becomes (by attname, without id; hash still empty)."""
    contact = new.contact
    return {
        "chain": chain_number,
        "seq": seq,
        "contact_id": contact.id if contact else None,
        "brand_id": new.brand.id if new.brand else (contact.brand_id if contact else None),
        "address_key": new.key,
        "channel": new.channel,
        "purpose_id": new.purpose.id if new.purpose else None,
        "action": new.action,
        "basis": new.basis,
        "source": new.source,
        "actor": new.principal.actor,
        "actor_user_id": new.principal.user.id if new.principal.user else None,
        "actor_contact_id": new.principal.guardian.id if new.principal.guardian else None,
        "recorded_by": new.principal.recorded_by[:100],
        "notice_id": new.notice.id if new.notice else None,
        "confirms_id": new.confirms.id if new.confirms else None,
        "pending_confirmation": new.pending_confirmation,
        "opt_out_offered": new.opt_out_offered,
        "reason": new.reason,
        "occurred_at": new.occurred_at or now,
        "recorded_at": now,
        "evidence_hash": (
            chain.evidence_hash(
                ip=evidence.ip, user_agent=evidence.user_agent, proof_sha256=evidence.proof_sha256
            )
            if evidence
            else ""
        ),
        "prev_hash": prev_hash,
        "hash": "",
    }


def _append_many_orm(new_events: Sequence[NewEvent], now: datetime) -> list[ConsentEvent]:
    """The same append through the ORM (SQLite, the zero-setup default: one writer at a time)."""
    chains = _orm_chains()
    heads = locked_heads([chain_for(new.contact.id if new.contact else None, chains) for new in new_events])
    events: list[ConsentEvent] = []
    for new in new_events:
        head = heads[chain_for(new.contact.id if new.contact else None, chains)]
        evidence = new.evidence if new.evidence is not None and not new.evidence.is_empty() else None
        event = ConsentEvent(**_event_fields(new, head.chain, head.seq + 1, head.hash, now, evidence))
        event.contact, event.purpose, event.notice, event.confirms = (
            new.contact,
            new.purpose,
            new.notice,
            new.confirms,
        )
        event.hash = chain.event_hash(event)
        head.seq, head.hash = event.seq, event.hash
        event.save(force_insert=True)
        if evidence:
            ConsentEvidence.objects.create(
                event=event,
                ip=evidence.ip,
                user_agent=evidence.user_agent,
                proof_sha256=evidence.proof_sha256,
            )
        events.append(event)
    for head in heads.values():
        head.updated_at = now
        head.save(update_fields=["seq", "hash", "updated_at"])
    state_apply(events)
    for event in events:
        for listener in _listeners:
            listener(event)
    return events


def ledger_checkpoint() -> LedgerCheckpoint:
    """Seal every chain head into one hash, chained to the previous checkpoint; once committed,
    publish it as a signed anchor (the log, and ``COMMS_LEDGER_ANCHOR_FILE`` when set)."""
    with transaction.atomic():
        heads = {
            str(h.chain): [h.seq, h.hash] for h in ChainHead.objects.select_for_update().order_by("chain")
        }
        previous = LedgerCheckpoint.objects.order_by("-id").first()
        prev_hash = previous.hash if previous else GENESIS_HASH
        checkpoint = LedgerCheckpoint.objects.create(
            created_at=timezone.now(),
            heads=heads,
            prev_hash=prev_hash,
            hash=chain.heads_hash(prev_hash, heads),
        )
        # After the commit only: an anchor must never name a checkpoint that was rolled back.
        transaction.on_commit(lambda: ledger_anchor_publish(checkpoint=checkpoint))
    return checkpoint


def ledger_anchor_publish(*, checkpoint: LedgerCheckpoint) -> str | None:
    """Write the signed anchor line of ``checkpoint`` to the log and append it to the anchor file.

    Returns the line, or None when anchors are off (no ``COMMS_LEDGER_ANCHOR_SECRET``). A file
    that cannot be written raises: the operator must notice that anchoring stopped."""
    secret = settings.LEDGER_ANCHOR_SECRET
    if not secret:
        return None
    payload = anchors.anchor_payload(checkpoint, secret)
    line = anchors.anchor_line(payload)
    logger.info("%s%s", anchors.LOG_PREFIX, line, extra={anchors.LOG_FIELD: payload})
    if settings.LEDGER_ANCHOR_FILE:
        path = Path(settings.LEDGER_ANCHOR_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write of one line in append mode: lines of concurrent writers never interleave.
        with path.open("a", encoding="utf-8") as target:
            target.write(line + "\n")
            target.flush()
            os.fsync(target.fileno())
    return line
