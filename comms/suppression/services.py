"""Every write to the ledger, the suppression list and the purposes happens here, and only here.

Each public function runs in one transaction, validates its input (raising ``InvalidInput``
naming the field), takes the address lock where a withdrawal must be ordered against senders,
appends its hash-chained event and returns what it wrote.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from comms.contacts.models import Brand, Contact
from comms.errors import Conflict, Forbidden, InvalidInput
from comms.suppression import anchors, append, bulk, chain
from comms.suppression.keys import address_key, lock_id
from comms.suppression.locks import withdrawal_lock
from comms.suppression.models import (
    GENESIS_HASH,
    PERSON_CAUSED_REASONS,
    STAFF_LIFTABLE_REASONS,
    Action,
    Actor,
    Basis,
    ChainHead,
    Channel,
    ConsentEvent,
    ConsentEvidence,
    ConsentImportKey,
    LedgerCheckpoint,
    ProofFile,
    Purpose,
    PurposeNotice,
    Source,
    Suppression,
    SuppressionChannel,
    SuppressionReason,
)
from comms.suppression.state import (
    STATE_FIELDS,
    advance,
    scope_blocked,
    state_apply,
    state_levels,
    state_plan,
)

logger = logging.getLogger(__name__)

# Grants from these sources always wait for double opt-in (the address is not yet proven).
DOUBLE_OPT_IN_SOURCES = frozenset({Source.WEB_FORM, Source.PREFERENCE_CENTRE, Source.SMS_KEYWORD})
# The choices' values, once (``TextChoices.values`` builds a new list on every access, and every
# row of an import is checked against four of them).
_ACTORS = frozenset(Actor.values)
_SOURCES = frozenset(Source.values)
_CHANNELS = frozenset(Channel.values)
_BASES = frozenset(Basis.values)
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


def _chain_for(contact_id: int | None) -> int:
    return (contact_id or 0) % settings.LEDGER_CHAINS


class LedgerBroken(RuntimeError):
    """The ledger is not as its own guards leave it (a chain head is gone): appending would fork
    or restart a chain, so nothing is appended until an operator has run ``verify_ledger``."""


def _locked_heads(chain_numbers: Sequence[int]) -> dict[int, ChainHead]:
    """Row-lock the heads of these chains, in chain order (two appenders cannot deadlock). A
    chain's head is created at seq 0 only while the chain has no events: a head that vanished
    from a chain with events is refused, never recreated (that would restart the chain)."""
    numbers = sorted(set(chain_numbers))
    if connection.vendor != "postgresql":
        return {number: _locked_head_orm(number) for number in numbers}
    heads = _select_heads(numbers)
    missing = [number for number in numbers if number not in heads]
    if missing:
        # Waits for a concurrent creator's uncommitted row, then does nothing.
        bulk.run(
            "INSERT INTO suppression_chainhead (chain, seq, hash, updated_at)"
            " SELECT n, 0, %s, now() FROM unnest(%s::int[]) AS t(n) ON CONFLICT (chain) DO NOTHING",
            [GENESIS_HASH, missing],
        )
        heads = _select_heads(numbers)  # ours or a concurrent creator's, locked now
    # Under the head's lock every event of its chain is behind it: a head at seq 0 on a chain
    # with events was deleted (and just recreated by us, which the caller's rollback undoes).
    fresh = [number for number, head in heads.items() if head.seq == 0]
    if fresh:
        broken = bulk.run(
            "SELECT n FROM unnest(%s::int[]) AS t(n)"
            " WHERE EXISTS (SELECT 1 FROM suppression_consentevent e WHERE e.chain = t.n) ORDER BY n",
            [fresh],
        )
        if broken:
            raise LedgerBroken(
                f"the head of chain {broken[0][0]} is missing but the chain has events: "
                "run verify_ledger; nothing is appended to a chain without its head"
            )
    return heads


def _select_heads(numbers: list[int]) -> dict[int, ChainHead]:
    rows = bulk.run(
        "SELECT chain, seq, hash, updated_at FROM suppression_chainhead WHERE chain = ANY(%s::int[])"
        " ORDER BY chain FOR UPDATE",
        [numbers],
    )
    return {row[0]: ChainHead.from_db("default", ["chain", "seq", "hash", "updated_at"], row) for row in rows}


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


def _append(*, locked: append.Locked | None = None, **fields: Any) -> ConsentEvent:
    """Append one event to its chain (see ``_append_many``)."""
    return _append_many([NewEvent(**fields)], locked=locked)[0]


def _lock_for_append(
    contacts: Sequence[Contact | None],
    *,
    events: int,
    address_locks: Iterable[str] = (),
    suppression_keys: Iterable[str] = (),
) -> append.Locked:
    """PostgreSQL: take an append's locks (address keys, then chain heads) and read, under them,
    the state and suppressions it decides on; one round trip (``append.lock``). Call it inside
    the transaction, before deciding, and hand the result to ``_append_many``."""
    try:
        return append.lock(
            chains=[_chain_for(contact.pk if contact else None) for contact in contacts] or [0],
            events=events,
            contacts=[contact.pk for contact in contacts if contact is not None],
            address_locks=[lock_id(key) for key in address_locks if key],
            suppression_keys=suppression_keys,
        )
    except append.Broken as exc:
        raise LedgerBroken(
            f"the head of chain {exc.chain} is missing but the chain has events: "
            "run verify_ledger; nothing is appended to a chain without its head"
        ) from None


def _append_many(new_events: Sequence[NewEvent], *, locked: append.Locked | None = None) -> list[ConsentEvent]:
    """Append events, in the order given, to their contacts' chains in one go: the heads of the
    chains involved are row-locked (in chain order, so two bulk appends cannot deadlock), the
    events hash-chained in memory and inserted together with their evidence, the heads moved,
    and the consent state brought in line, all in the caller's transaction. On PostgreSQL
    ``locked`` is what the caller's ``_lock_for_append`` took (else it is taken here)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger appends must run inside a transaction")
    now = timezone.now()
    for new in new_events:
        if (new.occurred_at or now) > now + CLOCK_SKEW:
            raise InvalidInput("occurred_at", "lies in the future")
    if connection.vendor != "postgresql":
        return _append_many_orm(new_events, now)
    if locked is None:
        locked = _lock_for_append([new.contact for new in new_events], events=len(new_events))
    if len(locked.ids) < len(new_events):
        raise RuntimeError("the append's lock drew fewer event ids than it has events")
    heads = locked.heads
    events: list[ConsentEvent] = []
    evidence_rows: list[dict[str, Any]] = []
    ids = iter(locked.ids)
    for new in new_events:
        contact = new.contact
        chain_number = _chain_for(contact.pk if contact else None)
        head = heads[chain_number]  # KeyError: the caller locked other chains than it appends to
        if contact is not None and contact.pk not in locked.contacts:
            raise RuntimeError("the append's lock did not read this contact's state")
        evidence = new.evidence if new.evidence is not None and not new.evidence.is_empty() else None
        event = append.event_instance(
            (
                next(ids),
                chain_number,
                head[0] + 1,
                contact.pk if contact else None,
                new.brand.pk if new.brand else (contact.brand_id if contact else None),
                new.key,
                new.channel,
                new.purpose.pk if new.purpose else None,
                new.action,
                new.basis,
                new.source,
                new.principal.actor,
                new.principal.user.pk if new.principal.user else None,
                new.principal.guardian.pk if new.principal.guardian else None,
                new.principal.recorded_by[:100],
                new.notice.pk if new.notice else None,
                new.confirms.pk if new.confirms else None,
                new.pending_confirmation,
                new.opt_out_offered,
                new.reason,
                new.occurred_at or now,
                now,
                (
                    chain.evidence_hash(
                        ip=evidence.ip, user_agent=evidence.user_agent, proof_sha256=evidence.proof_sha256
                    )
                    if evidence
                    else ""
                ),
                head[1],
                "",
            ),
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
                    "event_id": event.pk,
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


def _append_many_orm(new_events: Sequence[NewEvent], now: datetime) -> list[ConsentEvent]:
    """The same append through the ORM (SQLite, the zero-setup default: one writer at a time)."""
    heads = {number: _locked_head_orm(number) for number in sorted({_chain_for(n.contact.pk if n.contact else None) for n in new_events})}
    events: list[ConsentEvent] = []
    for new in new_events:
        head = heads[_chain_for(new.contact.pk if new.contact else None)]
        evidence = new.evidence if new.evidence is not None and not new.evidence.is_empty() else None
        event = ConsentEvent(
            chain=head.chain,
            seq=head.seq + 1,
            contact=new.contact,
            brand_id=new.brand.pk if new.brand else (new.contact.brand_id if new.contact else None),
            address_key=new.key,
            channel=new.channel,
            purpose=new.purpose,
            action=new.action,
            basis=new.basis,
            source=new.source,
            actor=new.principal.actor,
            actor_user=new.principal.user,
            actor_contact=new.principal.guardian,
            recorded_by=new.principal.recorded_by[:100],
            notice=new.notice,
            confirms=new.confirms,
            pending_confirmation=new.pending_confirmation,
            opt_out_offered=new.opt_out_offered,
            reason=new.reason,
            occurred_at=new.occurred_at or now,
            recorded_at=now,
            evidence_hash=(
                chain.evidence_hash(
                    ip=evidence.ip, user_agent=evidence.user_agent, proof_sha256=evidence.proof_sha256
                )
                if evidence
                else ""
            ),
            prev_hash=head.hash,
        )
        event.hash = chain.event_hash(event)
        head.seq, head.hash = event.seq, event.hash
        event.save(force_insert=True)
        if evidence:
            ConsentEvidence.objects.create(
                event=event, ip=evidence.ip, user_agent=evidence.user_agent, proof_sha256=evidence.proof_sha256
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


# --- helpers --------------------------------------------------------------------------------


def _contact_keys(contact: Contact, channels: Iterable[str]) -> dict[str, str]:
    """address key per channel for the contact's current addresses."""
    keys: dict[str, str] = {}
    for channel in channels:
        address = contact.address_for(channel)
        if address:
            keys[channel] = address_key(channel, address)
    return keys


def _check_principal(contact: Contact, principal: Principal) -> None:
    if principal.actor not in _ACTORS:
        raise InvalidInput("actor", f"must be one of {', '.join(Actor.values)}")
    if principal.actor == Actor.GUARDIAN:
        if principal.guardian is None:
            raise InvalidInput("actor_contact_id", "a guardian's action must name the guardian contact")
        if contact.guardian_id is None or principal.guardian.pk != contact.guardian_id:
            raise InvalidInput("actor_contact_id", "is not this contact's linked guardian")
    elif principal.guardian is not None:
        raise InvalidInput("actor_contact_id", "only a guardian's action names an actor contact")


def _check_source(source: str) -> None:
    if source not in _SOURCES:
        raise InvalidInput("source", f"must be one of {', '.join(Source.values)}")


def _check_live(contact: Contact) -> None:
    if contact.erased_at is not None:
        raise Conflict(f"contact {contact.pk} is erased")


def _is_minor(contact: Contact, at: datetime) -> bool:
    age = contact.age_on(timezone.localdate(at))
    return age is not None and age < settings.DIGITAL_CONSENT_AGE


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _person_blocked(
    contact: Contact, channel: str, purpose: Purpose, key: str, *, locked: append.Locked | None = None
) -> bool:
    """Did the person withdraw or object in this scope (or suppress the address) without a
    grant made effective since, in the fold's order? Then a new grant must wait for their
    double opt-in. ``locked``: what the append's lock read (PostgreSQL), else read here."""
    if locked is not None:
        return locked.person_suppressed(key=key, channel=channel, brand_id=contact.brand_id) or scope_blocked(
            locked.levels, contact.pk, channel, purpose.pk
        )
    if _person_suppressed(brand_id=contact.brand_id, channel=channel, keys=[key]):
        return True
    return scope_blocked(state_levels([contact.pk]), contact.pk, channel, purpose.pk)


def _person_suppressed(*, brand_id: int, channel: str, keys: Iterable[str]) -> set[str]:
    """The keys among ``keys`` with an active suppression the person caused in this scope."""
    wanted = sorted(set(keys))
    if connection.vendor == "postgresql":  # asked before every grant: no ORM compilation
        rows = bulk.run(
            "SELECT address_key FROM suppression_suppression"
            " WHERE (brand_id IS NULL OR brand_id = %s) AND address_key = ANY(%s::text[])"
            " AND channel = ANY(%s::text[]) AND reason = ANY(%s::text[]) AND lifted_at IS NULL",
            [
                brand_id,
                wanted,
                [channel, SuppressionChannel.ALL.value],
                sorted(r.value for r in PERSON_CAUSED_REASONS),
            ],
            prepare=len(wanted) <= 1,
        )
        return {row[0] for row in rows}
    return set(
        Suppression.objects.filter(
            Q(brand__isnull=True) | Q(brand=brand_id),
            address_key__in=wanted,
            channel__in=[channel, SuppressionChannel.ALL],
            reason__in=PERSON_CAUSED_REASONS,
            lifted_at__isnull=True,
        ).values_list("address_key", flat=True)
    )


def _suppress(
    *, key: str, channel: str, brand: Brand | None, reason: str, event: ConsentEvent
) -> Suppression | None:
    """Add a suppression unless an identical active one exists (repeat events are harmless)."""
    existing = Suppression.objects.filter(
        address_key=key, channel=channel, brand=brand, reason=reason, lifted_at__isnull=True
    ).first()
    if existing:
        return None
    return Suppression.objects.create(
        address_key=key,
        channel=channel,
        brand=brand,
        reason=reason,
        source_event=event,
        created_at=event.recorded_at,
    )


# --- purposes -------------------------------------------------------------------------------


def purpose_create(
    *,
    brand: Brand,
    key: str,
    name: str,
    channels: Iterable[str],
    notice_text: str,
    allows_soft_opt_in: bool = False,
    marketing: bool = True,
    min_notice_version: int | None = None,
    consent_lifetime_days: int | None = None,
    created_by: User | None = None,
) -> Purpose:
    channel_set = set(channels)
    unknown = channel_set - set(Channel.values)
    if unknown:
        raise InvalidInput("channels", f"unknown channel(s): {', '.join(sorted(unknown))}")
    if not channel_set:
        raise InvalidInput("channels", "a purpose needs at least one channel")
    if not notice_text.strip():
        raise InvalidInput("notice_text", "a purpose needs the notice text people are shown")
    if min_notice_version is not None and min_notice_version > 1:
        raise InvalidInput("min_notice_version", "a new purpose has only notice version 1")
    with transaction.atomic():
        if Purpose.objects.filter(brand=brand, key=key).exists():
            raise InvalidInput("key", f"purpose {key!r} already exists for brand {brand.key}")
        purpose = Purpose.objects.create(
            brand=brand,
            key=key,
            name=name,
            allows_email=Channel.EMAIL in channel_set,
            allows_sms=Channel.SMS in channel_set,
            allows_soft_opt_in=allows_soft_opt_in,
            marketing=marketing,
            min_notice_version=min_notice_version,
            consent_lifetime_days=consent_lifetime_days,
        )
        PurposeNotice.objects.create(purpose=purpose, version=1, text=notice_text, created_by=created_by)
    return purpose


def purpose_update(
    *,
    purpose: Purpose,
    name: str | None = None,
    channels: Iterable[str] | None = None,
    allows_soft_opt_in: bool | None = None,
    min_notice_version: int | None = None,
    consent_lifetime_days: int | None = None,
    clear_min_notice_version: bool = False,
    clear_consent_lifetime: bool = False,
) -> Purpose:
    """Change a purpose's settings (never its notice text: see ``purpose_notice_publish``)."""
    with transaction.atomic():
        purpose = Purpose.objects.select_for_update().get(pk=purpose.pk)
        if name is not None:
            purpose.name = name
        if channels is not None:
            channel_set = set(channels)
            unknown = channel_set - set(Channel.values)
            if unknown or not channel_set:
                raise InvalidInput("channels", "must list email and/or sms")
            purpose.allows_email = Channel.EMAIL in channel_set
            purpose.allows_sms = Channel.SMS in channel_set
        if allows_soft_opt_in is not None:
            purpose.allows_soft_opt_in = allows_soft_opt_in
        if min_notice_version is not None:
            latest = purpose.notices.order_by("-version").values_list("version", flat=True).first() or 0
            if min_notice_version > latest:
                raise InvalidInput("min_notice_version", f"the latest notice version is {latest}")
            purpose.min_notice_version = min_notice_version
        elif clear_min_notice_version:
            purpose.min_notice_version = None
        if consent_lifetime_days is not None:
            purpose.consent_lifetime_days = consent_lifetime_days
        elif clear_consent_lifetime:
            purpose.consent_lifetime_days = None
        purpose.save()
    return purpose


def purpose_notice_publish(*, purpose: Purpose, text: str, created_by: User | None = None) -> PurposeNotice:
    """Publish a new version of the notice text; earlier consents keep pointing at theirs."""
    if not text.strip():
        raise InvalidInput("text", "the notice text cannot be empty")
    with transaction.atomic():
        locked = Purpose.objects.select_for_update().get(pk=purpose.pk)
        latest = locked.notices.order_by("-version").first()
        if latest is not None and latest.text == text:
            return latest
        return PurposeNotice.objects.create(
            purpose=locked, version=(latest.version + 1) if latest else 1, text=text, created_by=created_by
        )


# --- consent --------------------------------------------------------------------------------


def _grant_validate(
    *,
    contact: Contact,
    channel: str,
    purpose: Purpose,
    basis: str,
    source: str,
    principal: Principal,
    notice_version: int | None,
    occurred_at: datetime | None,
    notices: dict[tuple[int, int | None], PurposeNotice | None] | None = None,
) -> tuple[PurposeNotice, str]:
    """Every rule a grant must meet before it is appended (one grant or an import row); returns
    the notice it points at and the address key. ``notices`` caches notice look-ups."""
    _check_live(contact)
    _check_source(source)
    if channel not in _CHANNELS:
        raise InvalidInput("channel", f"must be one of {', '.join(Channel.values)}")
    if purpose.brand_id != contact.brand_id:
        raise InvalidInput("purpose", "belongs to another brand than the contact")
    if not purpose.allows_channel(channel):
        raise InvalidInput("channel", f"purpose {purpose.key!r} does not allow {channel}")
    if basis not in _BASES:
        raise InvalidInput("basis", f"must be one of {', '.join(Basis.values)}")
    if basis == Basis.SOFT_OPT_IN:
        if not purpose.allows_soft_opt_in:
            raise InvalidInput("basis", f"purpose {purpose.key!r} does not permit the soft opt-in")
        if contact.kind == "guest":
            raise InvalidInput("basis", "a trial guest has no purchase, so the soft opt-in cannot apply")
    if basis == Basis.CONTRACT and purpose.marketing:
        raise InvalidInput("basis", "marketing cannot rest on contract: use consent or the soft opt-in")
    _check_principal(contact, principal)
    if principal.actor not in (Actor.GUARDIAN,) and _is_minor(contact, occurred_at or timezone.now()):
        raise InvalidInput("actor", "the contact is a minor: consent must be given by their linked guardian")
    address = contact.address_for(channel)
    if not address:
        raise InvalidInput(
            "channel", f"the contact has no {'email address' if channel == 'email' else 'mobile'}"
        )
    cache = notices if notices is not None else {}
    if (purpose.pk, notice_version) not in cache:
        cache[(purpose.pk, notice_version)] = _notice(purpose, notice_version)
    notice = cache[(purpose.pk, notice_version)]
    if notice is None:
        raise InvalidInput(
            "notice_version", f"purpose {purpose.key!r} has no notice version {notice_version}"
        )
    return notice, address_key(channel, address)


def _notice(purpose: Purpose, version: int | None) -> PurposeNotice | None:
    """The notice version a grant points at (the latest when ``version`` is None)."""
    if connection.vendor == "postgresql":  # asked before every grant: no ORM compilation
        where = "purpose_id = %s::bigint" + (" AND version = %s::int" if version is not None else "")
        params = [purpose.pk] if version is None else [purpose.pk, version]
        found = bulk.select_rows(PurposeNotice, f"{where} ORDER BY version DESC LIMIT 1", params)
        return found[0] if found else None
    notices = purpose.notices.all()
    if version is not None:
        return notices.filter(version=version).first()
    return notices.order_by("-version").first()


def consent_grant(
    *,
    contact: Contact,
    channel: str,
    purpose: Purpose,
    basis: str,
    source: str,
    principal: Principal,
    notice_version: int | None = None,
    opt_out_offered: bool = False,
    occurred_at: datetime | None = None,
    evidence: Evidence | None = None,
    require_confirmation: bool = False,
) -> ConsentEvent:
    """Record a grant. It waits for double opt-in when it comes from an unproven source, when
    asked to, or when the person withdrew or objected in this scope before."""
    notice, key = _grant_validate(
        contact=contact,
        channel=channel,
        purpose=purpose,
        basis=basis,
        source=source,
        principal=principal,
        notice_version=notice_version,
        occurred_at=occurred_at,
    )
    with transaction.atomic():
        # Decided under the chain head's lock: a withdrawal committed just before is seen.
        locked = _lock_for_append([contact], events=1, suppression_keys=[key]) if _pg() else None
        pending = (
            require_confirmation
            or source in DOUBLE_OPT_IN_SOURCES
            or _person_blocked(contact, channel, purpose, key, locked=locked)
        )
        return _append(
            locked=locked,
            action=Action.GRANT,
            source=source,
            principal=principal,
            contact=contact,
            key=key,
            channel=channel,
            purpose=purpose,
            basis=basis,
            notice=notice,
            pending_confirmation=pending,
            opt_out_offered=opt_out_offered,
            occurred_at=occurred_at,
            evidence=evidence,
        )


def consent_confirm(
    *,
    grant: ConsentEvent,
    source: str,
    principal: Principal,
    occurred_at: datetime | None = None,
    evidence: Evidence | None = None,
) -> ConsentEvent:
    """The person's double opt-in: makes a pending grant effective and lifts the suppressions
    they caused in its scope (withdrawal, objection, SMS stop, complaint)."""
    _check_source(source)
    if grant.action != Action.GRANT:
        raise InvalidInput("confirms_event_id", "is not a grant")
    if not grant.pending_confirmation:
        raise Conflict("that grant needs no confirmation")
    if principal.actor not in (Actor.SELF, Actor.GUARDIAN):
        raise InvalidInput("actor", "only the person (or their guardian) can confirm a consent")
    contact = grant.contact
    assert contact is not None
    _check_live(contact)
    _check_principal(contact, principal)
    if occurred_at is not None and occurred_at < grant.occurred_at:
        raise InvalidInput("occurred_at", "a confirmation cannot come before the grant it confirms")
    if principal.actor != Actor.GUARDIAN and _is_minor(contact, occurred_at or timezone.now()):
        raise InvalidInput("actor", "the contact is a minor: their linked guardian confirms")
    with transaction.atomic():
        # Two confirmations of the same link must not both pass the check. They append to the
        # same chain, so its head lock (taken again by _append) orders them; a row lock on the
        # grant would need UPDATE on the ledger, which the service role does not hold.
        locked = _lock_for_append([contact], events=1) if _pg() else None
        if locked is None:
            _locked_heads([_chain_for(contact.pk)])
        if ConsentEvent.objects.filter(action=Action.CONFIRM, confirms=grant).exists():
            raise Conflict("that grant is already confirmed")
        event = _append(
            locked=locked,
            action=Action.CONFIRM,
            source=source,
            principal=principal,
            contact=contact,
            key=grant.address_key,
            channel=grant.channel,
            purpose=grant.purpose,
            basis=grant.basis,
            notice=grant.notice,
            confirms=grant,
            occurred_at=occurred_at,
            evidence=evidence,
        )
        _lift_person_suppressions(
            key=grant.address_key, channel=grant.channel, brand=contact.brand, event=event
        )
    return event


def _lift_person_suppressions(*, key: str, channel: str, brand: Brand, event: ConsentEvent) -> None:
    active = Suppression.objects.select_for_update(of=("self",)).filter(
        address_key=key,
        channel__in=[channel, SuppressionChannel.ALL],
        reason__in=PERSON_CAUSED_REASONS,
        lifted_at__isnull=True,
        # Only what the person did before confirming: a later stop outlives an older confirmation
        # that reaches us late (a backdated occurred_at).
        source_event__occurred_at__lte=event.occurred_at,
    )
    for suppression in active.filter(Q(brand=brand) | Q(brand__isnull=True)):
        if suppression.brand_id is None:
            # A stop for every brand: lift it for this brand only, by narrowing it to the others.
            for other in Brand.objects.exclude(pk=brand.pk):
                _suppress(
                    key=key,
                    channel=suppression.channel,
                    brand=other,
                    reason=suppression.reason,
                    event=suppression.source_event,
                )
        suppression.lifted_at = event.recorded_at
        suppression.lifted_by_event = event
        suppression.save(update_fields=["lifted_at", "lifted_by_event"])


def consent_withdraw(
    *,
    contact: Contact,
    channel: str | None,
    purpose: Purpose | None,
    source: str,
    principal: Principal,
    occurred_at: datetime | None = None,
    evidence: Evidence | None = None,
    suppression_reason: str = SuppressionReason.WITHDRAWN,
) -> ConsentEvent:
    """Withdraw consent for one purpose, or (purpose None) for every purpose of the channel, or
    (channel None too) for every channel of the brand. Effective for senders at commit."""
    _check_source(source)
    _check_principal(contact, principal)
    if channel is not None and channel not in _CHANNELS:
        raise InvalidInput("channel", f"must be one of {', '.join(Channel.values)}")
    if purpose is not None:
        if purpose.brand_id != contact.brand_id:
            raise InvalidInput("purpose", "belongs to another brand than the contact")
        if channel is None:
            raise InvalidInput("channel", "a withdrawal for one purpose names its channel")
    channels = [channel] if channel else list(Channel.values)
    keys = _contact_keys(contact, channels)
    with transaction.atomic():
        locked = None
        if _pg():  # the address locks and the chain head in one round trip
            locked = _lock_for_append([contact], events=1, address_locks=keys.values())
        else:
            withdrawal_lock(keys.values())
        primary_key = keys.get(channel or "", "") if channel else next(iter(keys.values()), "")
        event = _append(
            locked=locked,
            action=Action.WITHDRAW,
            source=source,
            principal=principal,
            contact=contact,
            key=primary_key,
            channel=channel or "",
            purpose=purpose,
            occurred_at=occurred_at,
            evidence=evidence,
        )
        if purpose is None:
            for each_channel, key in keys.items():
                _suppress(
                    key=key, channel=each_channel, brand=contact.brand, reason=suppression_reason, event=event
                )
    return event


def objection_record(
    *,
    contact: Contact,
    source: str,
    principal: Principal,
    occurred_at: datetime | None = None,
    evidence: Evidence | None = None,
) -> ConsentEvent:
    """An objection to direct marketing (GDPR art. 21): a hard stop on every channel and purpose
    of the contact's brand, and on each of the contact's addresses."""
    _check_source(source)
    _check_principal(contact, principal)
    keys = _contact_keys(contact, Channel.values)
    with transaction.atomic():
        withdrawal_lock(keys.values())
        event = _append(
            action=Action.OBJECT,
            source=source,
            principal=principal,
            contact=contact,
            key=keys.get(Channel.EMAIL) or keys.get(Channel.SMS) or "",
            occurred_at=occurred_at,
            evidence=evidence,
        )
        for key in keys.values():
            _suppress(
                key=key,
                channel=SuppressionChannel.ALL,
                brand=contact.brand,
                reason=SuppressionReason.OBJECTION,
                event=event,
            )
    return event


def _is_restricted(contact: Contact) -> bool:
    latest = (
        ConsentEvent.objects.filter(contact=contact, action__in=[Action.RESTRICT, Action.LIFT_RESTRICTION])
        .order_by("-occurred_at", "-seq")
        .values_list("action", flat=True)
        .first()
    )
    return latest == Action.RESTRICT


def restriction_set(
    *, contact: Contact, source: str, principal: Principal, occurred_at: datetime | None = None
) -> ConsentEvent:
    """Restriction of processing (GDPR art. 18): no message while it lasts."""
    _check_source(source)
    _check_live(contact)
    _check_principal(contact, principal)
    keys = _contact_keys(contact, Channel.values)
    with transaction.atomic():
        withdrawal_lock(keys.values())
        if _is_restricted(contact):
            raise Conflict(f"contact {contact.pk} is already restricted")
        return _append(
            action=Action.RESTRICT,
            source=source,
            principal=principal,
            contact=contact,
            occurred_at=occurred_at,
        )


def restriction_lift(
    *, contact: Contact, source: str, principal: Principal, occurred_at: datetime | None = None
) -> ConsentEvent:
    _check_source(source)
    _check_principal(contact, principal)
    with transaction.atomic():
        if not _is_restricted(contact):
            raise Conflict(f"contact {contact.pk} is not restricted")
        return _append(
            action=Action.LIFT_RESTRICTION,
            source=source,
            principal=principal,
            contact=contact,
            occurred_at=occurred_at,
        )


# --- suppressions ---------------------------------------------------------------------------


def suppression_add(
    *,
    channel: str,
    address: str,
    reason: str,
    source: str,
    principal: Principal,
    brand: Brand | None = None,
    contact: Contact | None = None,
    occurred_at: datetime | None = None,
    evidence: Evidence | None = None,
) -> tuple[ConsentEvent, Suppression | None]:
    """Suppress a normalised address in a scope (``channel`` may be ``all``). Returns the event
    and the new suppression, or None when an identical one was already active."""
    from comms.contacts.addresses import normalise_address

    _check_source(source)
    if channel not in SuppressionChannel.values:
        raise InvalidInput("channel", f"must be one of {', '.join(SuppressionChannel.values)}")
    if reason not in SuppressionReason.values:
        raise InvalidInput("reason", f"must be one of {', '.join(SuppressionReason.values)}")
    kinds = [channel] if channel != SuppressionChannel.ALL else ["email" if "@" in address else "sms"]
    normalised = normalise_address(kinds[0], address)
    key = address_key(kinds[0], normalised)
    with transaction.atomic():
        withdrawal_lock([key])
        event = _append(
            action=Action.SUPPRESS,
            source=source,
            principal=principal,
            contact=contact,
            brand=brand,
            key=key,
            channel=channel if channel != SuppressionChannel.ALL else "",
            reason=reason,
            occurred_at=occurred_at,
            evidence=evidence,
        )
        return event, _suppress(key=key, channel=channel, brand=brand, reason=reason, event=event)


def suppression_lift(*, suppression: Suppression, source: str, principal: Principal) -> ConsentEvent:
    """Staff may clear a bounce or an operator block. What the person caused, or an erasure,
    only the person's own confirmed consent can lift (see ``consent_confirm``)."""
    _check_source(source)
    if suppression.reason not in STAFF_LIFTABLE_REASONS:
        raise Forbidden(
            f"a {suppression.reason} suppression is lifted only by the person's own consent, confirmed by double opt-in"
        )
    with transaction.atomic():
        locked = Suppression.objects.select_for_update().get(pk=suppression.pk)
        if locked.lifted_at is not None:
            raise Conflict("that suppression is already lifted")
        event = _append(
            action=Action.LIFT_SUPPRESSION,
            source=source,
            principal=principal,
            brand=locked.brand,
            key=locked.address_key,
            channel=locked.channel if locked.channel != SuppressionChannel.ALL else "",
            reason=locked.reason,
        )
        locked.lifted_at = event.recorded_at
        locked.lifted_by_event = event
        locked.save(update_fields=["lifted_at", "lifted_by_event"])
    return event


def erasure_record(*, contact: Contact, source: str, principal: Principal) -> ConsentEvent:
    """The ledger's side of an erasure (art. 17): one ``erase`` event and an ``erased``
    suppression for every address the contact had, so the address can never be messaged again
    by a later import. Must run in the caller's transaction, before the data is blanked."""
    keys = _contact_keys(contact, Channel.values)
    withdrawal_lock(keys.values())
    event = _append(
        action=Action.ERASE,
        source=source,
        principal=principal,
        contact=contact,
        key=keys.get(Channel.EMAIL) or keys.get(Channel.SMS) or "",
        reason=SuppressionReason.ERASED,
    )
    for channel, key in keys.items():
        _suppress(key=key, channel=channel, brand=None, reason=SuppressionReason.ERASED, event=event)
    return event


RECTIFIABLE_FIELDS = ("first_name", "last_name", "birth_date", "email", "mobile", "guardian")


def rectification_record(
    *, contact: Contact, fields: Iterable[str], source: str, principal: Principal
) -> list[ConsentEvent]:
    """Record a rectification (art. 16) already made to ``contact``: one ``rectify`` event per
    changed field, its name in ``reason`` and never its value. A new email or mobile is named by
    its keyed hash (empty when the address was removed), so the ledger knows which address the
    contact's later events are about. Runs in the caller's transaction, after the change."""
    _check_source(source)
    given = set(fields)
    changed = [name for name in RECTIFIABLE_FIELDS if name in given]
    unknown = given - set(RECTIFIABLE_FIELDS)
    if unknown:
        raise InvalidInput("fields", f"not personal data that is rectified: {', '.join(sorted(unknown))}")
    events = []
    with transaction.atomic():
        for name in changed:
            channel = {"email": Channel.EMAIL, "mobile": Channel.SMS}.get(name, "")
            key = _contact_keys(contact, [channel]).get(channel, "") if channel else ""
            events.append(
                _append(
                    action=Action.RECTIFY,
                    source=source,
                    principal=principal,
                    contact=contact,
                    key=key,
                    channel=channel,
                    reason=name,
                )
            )
    return events


# --- bulk import of consents ---------------------------------------------------------------


@dataclass(frozen=True)
class ConsentImportRow:
    """One row of a consent import: a grant (or a withdrawal) recorded elsewhere, keyed by the
    source system's own id for the fact (``external_key``) so a re-run adds nothing."""

    external_key: str
    channel: str
    purpose: str
    occurred_at: datetime | None
    contact_id: int | None = None
    brand: str = ""
    contact_external_id: str = ""
    action: str = Action.GRANT
    basis: str = Basis.CONSENT
    source: str = Source.IMPORT
    notice_version: int | None = None
    opt_out_offered: bool = False
    evidence: Evidence | None = None


@dataclass(frozen=True)
class ConsentImportError:
    index: int
    external_key: str
    field: str
    message: str


@dataclass
class ConsentImportResult:
    created: int = 0
    unchanged: int = 0
    errors: list[ConsentImportError] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)
    # The row index of each of ``event_ids`` (merging the results of parallel workers).
    event_indexes: list[int] = field(default_factory=list, repr=False)


IMPORT_ACTIONS = (Action.GRANT, Action.WITHDRAW)
IMPORT_CHUNK = 1000


def consents_import(
    *,
    rows: Sequence[ConsentImportRow],
    principal: Principal,
    start_index: int = 0,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ConsentImportResult:
    """Append many consents in one transaction per chunk of ``IMPORT_CHUNK`` rows, under the
    chain heads' locks, hash-chained as single appends are. Each row is checked as
    ``consent_grant`` / ``consent_withdraw`` check theirs; a bad row is reported (index, field)
    and writes nothing, the good rows are kept. A row whose ``external_key`` is already in the
    ledger is left alone (``unchanged``), so a re-run of the same file adds nothing; a key that
    appears twice in ``rows`` is an error the second time. A grant after the person withdrew or
    objected waits for their double opt-in, exactly as one grant would; withdrawals take the
    address lock that orders them against senders.

    With several ledger chains (``COMMS_LEDGER_CHAINS``) on PostgreSQL, outside a transaction,
    the rows are split by their contact's chain over ``workers`` threads
    (``COMMS_IMPORT_WORKERS``), each with its own connection and chains: no two lock the same
    head, and each contact's rows stay in their order. ``progress`` is called with the number
    of rows done after each chunk."""
    indexed = list(enumerate(rows, start=start_index))
    result = ConsentImportResult()
    duplicates = _import_duplicates(indexed)
    for index, row in duplicates:
        result.errors.append(
            ConsentImportError(index, row.external_key, "external_key", "appears twice in this import")
        )
    if duplicates:
        dropped = {index for index, _ in duplicates}
        indexed = [(index, row) for index, row in indexed if index not in dropped]
        if progress is not None:
            progress(len(duplicates))
    workers = settings.IMPORT_WORKERS if workers is None else workers
    parallel = (
        workers > 1
        and settings.LEDGER_CHAINS > 1
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and len(indexed) > IMPORT_CHUNK
    )
    if not parallel:
        _import_rows(indexed, principal, result, progress)
    else:
        parts = _import_partitions(indexed, workers)
        with ThreadPoolExecutor(max_workers=len(parts), thread_name_prefix="consents-import") as pool:
            futures = [pool.submit(_import_rows_thread, part, principal, progress) for part in parts]
            for future in futures:
                part_result = future.result()  # a worker's exception is this call's
                result.created += part_result.created
                result.unchanged += part_result.unchanged
                result.errors.extend(part_result.errors)
                result.event_ids.extend(part_result.event_ids)
                result.event_indexes.extend(part_result.event_indexes)
        order = sorted(range(len(result.event_ids)), key=result.event_indexes.__getitem__)
        result.event_ids = [result.event_ids[i] for i in order]
        result.event_indexes = [result.event_indexes[i] for i in order]
    result.errors.sort(key=lambda error: error.index)
    return result


def _import_duplicates(indexed: Sequence[tuple[int, ConsentImportRow]]) -> list[tuple[int, ConsentImportRow]]:
    seen: set[str] = set()
    duplicates = []
    for index, row in indexed:
        if not row.external_key:
            continue
        if row.external_key in seen:
            duplicates.append((index, row))
        seen.add(row.external_key)
    return duplicates


def _import_rows(
    indexed: Sequence[tuple[int, ConsentImportRow]],
    principal: Principal,
    result: ConsentImportResult,
    progress: Callable[[int], None] | None,
) -> None:
    for offset in range(0, len(indexed), IMPORT_CHUNK):
        chunk = indexed[offset : offset + IMPORT_CHUNK]
        with transaction.atomic():
            _import_chunk(chunk, principal, result)
        if progress is not None:
            progress(len(chunk))


def _import_rows_thread(
    indexed: Sequence[tuple[int, ConsentImportRow]],
    principal: Principal,
    progress: Callable[[int], None] | None,
) -> ConsentImportResult:
    """One parallel worker: its own connection (Django's are per thread), closed at the end."""
    result = ConsentImportResult()
    try:
        _import_rows(indexed, principal, result, progress)
    finally:
        connection.close()
    return result


def _import_partitions(
    indexed: Sequence[tuple[int, ConsentImportRow]], workers: int
) -> list[list[tuple[int, ConsentImportRow]]]:
    """The rows split by their contact's chain (chain mod ``workers``), each part in the rows'
    order. A row naming no known contact goes to the first part (it is reported there)."""
    wanted: dict[str, set[str]] = {}
    for _, row in indexed:
        if row.contact_id is None and row.brand and row.contact_external_id:
            wanted.setdefault(row.brand, set()).add(row.contact_external_id)
    external: dict[tuple[str, str], int] = {}
    for brand_key, external_ids in wanted.items():
        for external_id, contact_id in Contact.objects.filter(
            brand__key=brand_key, external_id__in=list(external_ids)
        ).values_list("external_id", "pk"):
            assert external_id is not None
            external[(brand_key, external_id)] = contact_id
    count = min(workers, settings.LEDGER_CHAINS)
    parts: list[list[tuple[int, ConsentImportRow]]] = [[] for _ in range(count)]
    for index, row in indexed:
        known = (
            row.contact_id
            if row.contact_id is not None
            else external.get((row.brand, row.contact_external_id))
        )
        parts[_chain_for(known) % count if known is not None else 0].append((index, row))
    return [part for part in parts if part]


def _import_contacts(
    chunk: Sequence[ConsentImportRow],
) -> tuple[dict[int, Contact], dict[tuple[str, str], Contact]]:
    ids = {row.contact_id for row in chunk if row.contact_id is not None}
    # One Brand instance per brand, not one per contact (select_related builds one per row).
    brands: dict[int, Brand] = {}

    def with_brand(contact: Contact) -> Contact:
        brand = brands.get(contact.brand_id)
        if brand is None:
            brand = brands[contact.brand_id] = Brand.objects.get(pk=contact.brand_id)
        Contact.brand.field.set_cached_value(contact, brand)
        return contact

    if connection.vendor == "postgresql":  # one array, not a thousand parameters to compile
        found = bulk.select_rows(Contact, "id = ANY(%s::bigint[])", [sorted(ids)], prepare=False)
    else:
        found = list(Contact.objects.filter(pk__in=ids))
    by_id = {c.pk: with_brand(c) for c in found}
    external = {(row.brand, row.contact_external_id) for row in chunk if row.contact_id is None}
    by_external: dict[tuple[str, str], Contact] = {}
    if external:
        query = Q()
        for brand_key, external_id in external:
            query |= Q(brand__key=brand_key, external_id=external_id)
        for contact in Contact.objects.filter(query):
            assert contact.external_id is not None
            by_external[(with_brand(contact).brand.key, contact.external_id)] = contact
    return by_id, by_external


def _import_chunk(
    indexed: Sequence[tuple[int, ConsentImportRow]], principal: Principal, result: ConsentImportResult
) -> None:
    chunk = [row for _, row in indexed]
    keys = [row.external_key for row in chunk if row.external_key]
    if connection.vendor == "postgresql":  # one array, not a thousand literals to parse
        known = {
            key
            for (key,) in bulk.run(
                "SELECT key FROM suppression_consentimportkey WHERE key = ANY(%s::text[])",
                [keys],
                prepare=False,
            )
        }
    else:
        known = set(ConsentImportKey.objects.filter(key__in=keys).values_list("key", flat=True))
    by_id, by_external = _import_contacts(chunk)
    purposes: dict[tuple[int, str], Purpose | None] = {}
    notices: dict[tuple[int, int | None], PurposeNotice | None] = {}
    prepared: list[tuple[int, ConsentImportRow, Contact, Purpose | None, PurposeNotice | None, str]] = []
    seen_keys: set[str] = set()
    for index, row in indexed:
        try:
            if not row.external_key or len(row.external_key) > 200:
                raise InvalidInput("external_key", "is required (at most 200 characters)")
            if row.external_key in known:
                result.unchanged += 1
                continue
            if row.external_key in seen_keys:
                raise InvalidInput("external_key", "appears twice in this import")
            if row.action not in IMPORT_ACTIONS:
                raise InvalidInput("action", "must be grant or withdraw")
            if row.occurred_at is None:
                raise InvalidInput("occurred_at", "is required: when the person gave or withdrew consent")
            if row.contact_id is not None:
                contact = by_id.get(row.contact_id)
                if contact is None:
                    raise InvalidInput("contact_id", f"unknown contact {row.contact_id}")
            else:
                if not row.brand or not row.contact_external_id:
                    raise InvalidInput(
                        "contact_id", "name the contact by contact_id or brand + contact_external_id"
                    )
                found = by_external.get((row.brand, row.contact_external_id))
                if found is None:
                    raise InvalidInput(
                        "contact_external_id",
                        f"no contact {row.contact_external_id!r} in brand {row.brand!r}",
                    )
                contact = found
            purpose: Purpose | None = None
            if row.purpose:
                if (contact.brand_id, row.purpose) not in purposes:
                    purposes[(contact.brand_id, row.purpose)] = Purpose.objects.filter(
                        brand_id=contact.brand_id, key=row.purpose
                    ).first()
                purpose = purposes[(contact.brand_id, row.purpose)]
                if purpose is None:
                    raise InvalidInput("purpose", f"unknown purpose {row.purpose!r} for the contact's brand")
            if row.action == Action.GRANT:
                if purpose is None:
                    raise InvalidInput("purpose", "a grant names its purpose")
                notice, key = _grant_validate(
                    contact=contact,
                    channel=row.channel,
                    purpose=purpose,
                    basis=row.basis,
                    source=row.source,
                    principal=principal,
                    notice_version=row.notice_version,
                    occurred_at=row.occurred_at,
                    notices=notices,
                )
            else:
                _check_source(row.source)
                _check_live(contact)
                if row.channel not in _CHANNELS:
                    raise InvalidInput("channel", f"must be one of {', '.join(Channel.values)}")
                notice, key = None, _contact_keys(contact, [row.channel]).get(row.channel, "")
            if row.occurred_at > timezone.now() + CLOCK_SKEW:
                raise InvalidInput("occurred_at", "lies in the future")
        except (InvalidInput, Conflict) as exc:
            field_name = exc.field if isinstance(exc, InvalidInput) else "contact_id"
            result.errors.append(ConsentImportError(index, row.external_key, field_name or "", exc.message))
            continue
        seen_keys.add(row.external_key)
        prepared.append((index, row, contact, purpose, notice, key))
    if not prepared:
        return

    # Withdrawals are ordered against senders by the exclusive address lock, as one would be.
    # Whether a grant must wait for double opt-in depends on what came before it, read under the
    # chain heads' locks, and on this chunk's earlier rows: a copy of the state is advanced row
    # by row, as appends would.
    withdrawing = [key for _, row, _, _, _, key in prepared if row.action == Action.WITHDRAW]
    # Only a contact with several rows in the chunk needs the copy advanced (most have one).
    repeated = {pk for pk, n in Counter(c.pk for _, _, c, _, _, _ in prepared).items() if n > 1}
    locked: append.Locked | None = None
    suppressed: set[tuple[str, str]] = set()
    if _pg():
        locked = _lock_for_append(
            [contact for _, _, contact, _, _, _ in prepared],
            events=len(prepared),
            address_locks=withdrawing,
            suppression_keys=[key for _, row, _, _, _, key in prepared if row.action == Action.GRANT],
        )
        # Copies where this chunk's own rows advance them (the append advances the stored rows).
        levels: dict[Any, Any] = {
            level: copy.copy(row) if level[0] in repeated else row for level, row in locked.levels.items()
        }
        for _, row, contact, _, _, key in prepared:
            if locked.person_suppressed(key=key, channel=row.channel, brand_id=contact.brand_id):
                suppressed.add((row.channel, key))
    else:
        withdrawal_lock(withdrawing)
        levels = state_levels({contact.pk for _, _, contact, _, _, _ in prepared})
        for brand_id, channel in {(c.brand_id, r.channel) for _, r, c, _, _, _ in prepared}:
            keys = [k for _, r, c, _, _, k in prepared if c.brand_id == brand_id and r.channel == channel]
            suppressed |= {
                (channel, k) for k in _person_suppressed(brand_id=brand_id, channel=channel, keys=keys)
            }
    specs: list[NewEvent] = []
    for _, row, contact, purpose, notice, key in prepared:
        if row.action == Action.GRANT:
            assert purpose is not None
            pending = (
                row.source in DOUBLE_OPT_IN_SOURCES
                or (row.channel, key) in suppressed
                or scope_blocked(levels, contact.pk, row.channel, purpose.pk)
            )
            spec = NewEvent(
                action=Action.GRANT,
                source=row.source,
                principal=principal,
                contact=contact,
                key=key,
                channel=row.channel,
                purpose=purpose,
                basis=row.basis,
                notice=notice,
                pending_confirmation=pending,
                opt_out_offered=row.opt_out_offered,
                occurred_at=row.occurred_at,
                evidence=row.evidence,
            )
        else:
            spec = NewEvent(
                action=Action.WITHDRAW,
                source=row.source,
                principal=principal,
                contact=contact,
                key=key,
                channel=row.channel,
                purpose=purpose,
                occurred_at=row.occurred_at,
                evidence=row.evidence,
            )
            if purpose is None and key:
                suppressed.add((row.channel, key))
        specs.append(spec)
        if contact.pk in repeated:
            _advance_copy(levels, spec)
    events = _append_many(specs, locked=locked)
    for (_, row, contact, purpose, _, key), event in zip(prepared, events, strict=True):
        if row.action == Action.WITHDRAW and purpose is None and key:
            _suppress(
                key=key,
                channel=row.channel,
                brand=contact.brand,
                reason=SuppressionReason.WITHDRAWN,
                event=event,
            )
    now = timezone.now()
    if connection.vendor == "postgresql":  # no model instance per key
        bulk.run(
            "INSERT INTO suppression_consentimportkey (key, event_id, created_at)"
            " SELECT k, e, %s FROM unnest(%b::text[], %b::bigint[]) AS t(k, e)",
            [now, [row.external_key for _, row, *_ in prepared], [event.pk for event in events]],
            prepare=False,
        )
    else:
        ConsentImportKey.objects.bulk_create(
            [
                ConsentImportKey(key=row.external_key, event=event, created_at=now)
                for (_, row, _, _, _, _), event in zip(prepared, events, strict=True)
            ]
        )
    result.created += len(events)
    result.event_ids.extend(event.pk for event in events)
    result.event_indexes.extend(index for index, *_ in prepared)


def _advance_copy(levels: dict[Any, Any], spec: NewEvent) -> None:
    """Advance the in-memory copy of the state by an event about to be appended (its order is
    taken as after everything stored: what matters is whether a later grant is blocked)."""
    assert spec.contact is not None
    level = (spec.contact.pk, spec.channel, spec.purpose.pk if spec.purpose else None)
    row = levels.get(level)
    if row is None:
        fields: dict[str, Any] = dict.fromkeys(STATE_FIELDS)
        fields.update({name: "" for name in STATE_FIELDS if name.endswith("_order")})
        row = levels[level] = SimpleNamespace(**fields)
    probe = SimpleNamespace(
        pk=None,
        action=spec.action,
        pending_confirmation=spec.pending_confirmation,
        occurred_at=spec.occurred_at or timezone.now(),
        chain=_chain_for(spec.contact.pk),
        seq=2**62,
        basis=spec.basis,
        actor=spec.principal.actor,
        actor_contact_id=None,
        notice=spec.notice,
        opt_out_offered=spec.opt_out_offered,
        confirms=None,
    )
    advance(row, probe)


def evidence_redact(*, events: Iterable[int], fields: Iterable[str] = ("ip", "user_agent")) -> int:
    """Drop personal data from evidence rows (retention, erasure). The chain is untouched."""
    allowed = {"ip", "user_agent", "proof_sha256"}
    changes: dict[str, Any] = {}
    for name in fields:
        if name not in allowed:
            raise InvalidInput("fields", f"unknown evidence field {name!r}")
        changes[name] = None if name == "ip" else ""
    return ConsentEvidence.objects.filter(event_id__in=list(events)).update(
        redacted_at=timezone.now(), **changes
    )


# --- proofs of consent ----------------------------------------------------------------------

PROOF_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png", "image/heic", "image/tiff"})


def _proof_path(sha256: str) -> Path:
    return Path(settings.PROOF_DIR) / sha256[:2] / sha256


def proof_store(*, content: bytes, content_type: str, uploaded_by: str = "") -> ProofFile:
    """Keep an uploaded proof of consent under its SHA-256 and return its row; a grant then
    names the hash in its evidence. Uploading the same file twice stores it once."""
    if not content:
        raise InvalidInput("file", "the file is empty")
    if len(content) > settings.PROOF_MAX_BYTES:
        raise InvalidInput("file", f"is larger than {settings.PROOF_MAX_BYTES} bytes")
    if content_type not in PROOF_TYPES:
        raise InvalidInput("file", f"must be one of {', '.join(sorted(PROOF_TYPES))}")
    digest = hashlib.sha256(content).hexdigest()
    path = _proof_path(digest)
    with transaction.atomic():
        proof = ProofFile.objects.select_for_update().filter(pk=digest).first()
        if proof is None or proof.deleted_at is not None or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(content)
            tmp.replace(path)
        if proof is None:
            proof = ProofFile.objects.create(
                sha256=digest, size=len(content), content_type=content_type, uploaded_by=uploaded_by[:100]
            )
        elif proof.deleted_at is not None:
            proof.deleted_at = None
            proof.save(update_fields=["deleted_at"])
    return proof


def proofs_delete(*, sha256s: Iterable[str]) -> int:
    """Delete stored proof files (erasure); the sealed hashes stay in the ledger."""
    deleted = 0
    for proof in ProofFile.objects.filter(pk__in=[s for s in sha256s if s], deleted_at__isnull=True):
        _proof_path(proof.sha256).unlink(missing_ok=True)
        proof.deleted_at = timezone.now()
        proof.save(update_fields=["deleted_at"])
        deleted += 1
    return deleted
