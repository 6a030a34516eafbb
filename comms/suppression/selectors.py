"""Reads over the ledger: chain verification, a contact's consent state, suppression lists."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from comms.contacts.models import Contact
from comms.errors import InvalidInput, NotFound
from comms.suppression import anchors, chain
from comms.suppression.gate import Decision, check, check_many
from comms.suppression.models import (
    GENESIS_HASH,
    ChainHead,
    ConsentEvent,
    ConsentEvidence,
    LedgerCheckpoint,
    Purpose,
    Suppression,
)


@dataclass
class BrokenEvent:
    event_id: int
    chain: int
    seq: int
    problem: str


@dataclass
class VerifyResult:
    ok: bool
    events_checked: int
    chains: int
    first_broken: BrokenEvent | None = None
    evidence_mismatches: list[int] = field(default_factory=list)
    checkpoint_problem: str | None = None


def ledger_verify(*, batch_size: int = 5000) -> VerifyResult:
    """Recompute every chain from genesis and name the first event that does not fit.

    Checks, per chain: sequence numbers run 1, 2, 3…; each event's ``prev_hash`` is the hash of
    the one before; each stored ``hash`` equals the recomputed one; the chain's head row exists
    (a chain with events but no head is reported) and agrees. Also reports evidence rows whose
    content no longer matches the hash the chain sealed (unless redacted on purpose), and whether
    the latest checkpoint matches the heads it recorded.
    """
    checked = 0
    first_broken: BrokenEvent | None = None
    last: dict[int, tuple[int, str]] = {}
    events = ConsentEvent.objects.order_by("chain", "seq").iterator(chunk_size=batch_size)
    for event in events:
        checked += 1
        if first_broken is not None:
            continue
        prev_seq, prev_hash = last.get(event.chain, (0, GENESIS_HASH))
        problem = None
        if event.seq != prev_seq + 1:
            problem = f"sequence gap: expected {prev_seq + 1}, found {event.seq}"
        elif event.prev_hash != prev_hash:
            problem = "prev_hash does not match the previous event's hash"
        elif chain.event_hash(event) != event.hash:
            problem = "hash does not match the event's content"
        if problem:
            first_broken = BrokenEvent(event.pk, event.chain, event.seq, problem)
        last[event.chain] = (event.seq, event.hash)

    if first_broken is None:
        heads = {head.chain: head for head in ChainHead.objects.all()}
        for number in sorted(set(heads) | set(last)):
            seq, digest = last.get(number, (0, GENESIS_HASH))
            head = heads.get(number)
            if head is None:  # a chain with events and no head row: the head was deleted
                tail = ConsentEvent.objects.filter(chain=number).order_by("-seq").first()
                first_broken = BrokenEvent(tail.pk if tail else 0, number, seq, "chain head missing")
                break
            if (head.seq, head.hash) != (seq, digest):
                tail = ConsentEvent.objects.filter(chain=head.chain).order_by("-seq").first()
                first_broken = BrokenEvent(
                    tail.pk if tail else 0,
                    head.chain,
                    seq,
                    "the chain head does not match the last event (events missing)",
                )
                break

    mismatches = [
        evidence.event_id
        for evidence in ConsentEvidence.objects.filter(redacted_at__isnull=True).select_related("event")
        if chain.evidence_hash(
            ip=evidence.ip, user_agent=evidence.user_agent, proof_sha256=evidence.proof_sha256
        )
        != evidence.event.evidence_hash
    ]

    checkpoint_problem = None
    prev = GENESIS_HASH
    for checkpoint in LedgerCheckpoint.objects.order_by("id"):
        if checkpoint.prev_hash != prev or chain.heads_hash(prev, checkpoint.heads) != checkpoint.hash:
            checkpoint_problem = f"checkpoint {checkpoint.pk} does not verify"
            break
        for chain_number, (seq, digest) in checkpoint.heads.items():
            sealed = (
                ConsentEvent.objects.filter(chain=int(chain_number), seq=seq)
                .values_list("hash", flat=True)
                .first()
            )
            if seq and sealed != digest:
                checkpoint_problem = (
                    f"checkpoint {checkpoint.pk} sealed an event that changed (chain {chain_number})"
                )
                break
        if checkpoint_problem:
            break  # name the first checkpoint that fails, as first_broken names the first event
        prev = checkpoint.hash

    return VerifyResult(
        ok=first_broken is None and not mismatches and checkpoint_problem is None,
        events_checked=checked,
        chains=len(last),
        first_broken=first_broken,
        evidence_mismatches=mismatches,
        checkpoint_problem=checkpoint_problem,
    )


@dataclass
class AnchorResult:
    ok: bool
    anchors_checked: int
    # The first anchor the database no longer matches, named by line and checkpoint.
    first_mismatch: str | None = None
    mismatches: int = 0


def _anchor_problem(anchor: anchors.Anchor, secret: str) -> str | None:
    payload = anchor.payload
    where = f"anchor on line {anchor.line}"
    if not anchors.signature_ok(payload, secret):
        return f"{where} (checkpoint {anchor.checkpoint_id}): bad signature, the line is not genuine"
    name = f"checkpoint {anchor.checkpoint_id} ({where})"
    stored = LedgerCheckpoint.objects.filter(pk=anchor.checkpoint_id).first()
    if stored is None:
        return f"{name} is missing from the database"
    if (stored.hash, stored.prev_hash, stored.heads) != (
        payload["hash"],
        payload["prev_hash"],
        payload["heads"],
    ):
        return f"{name} differs in the database from what was anchored"
    heads = {head.chain: head.seq for head in ChainHead.objects.all()}
    for chain_key, (seq, digest) in sorted(payload["heads"].items(), key=lambda item: int(item[0])):
        chain_number = int(chain_key)
        if not seq:
            continue
        sealed = (
            ConsentEvent.objects.filter(chain=chain_number, seq=seq).values_list("hash", flat=True).first()
        )
        if sealed is None:
            return (
                f"{name} sealed chain {chain_number} at seq {seq}, and that event is gone (the tail was cut)"
            )
        if sealed != digest:
            return f"{name} sealed chain {chain_number} at seq {seq}, and that event changed"
        if heads.get(chain_number, 0) < seq:
            return (
                f"{name} sealed chain {chain_number} at seq {seq}, and the chain head is back at "
                f"{heads.get(chain_number, 0)}"
            )
    return None


def _anchored_after(anchor: anchors.Anchor, until: datetime) -> bool:
    try:
        return datetime.fromisoformat(str(anchor.payload.get("created_at"))) > until
    except ValueError:
        return False  # checked (and reported) like any other anchor


def ledger_verify_anchors(
    *, lines: Iterable[str], secret: str, until: datetime | None = None
) -> AnchorResult:
    """Check the database against anchors published outside it (``anchors.py``), in order.

    Every anchor must be signed with ``secret``; its checkpoint must still be in the database,
    unchanged; each event it sealed must still be there with the sealed hash; and no chain head may
    be behind it. Names the first anchor that fails. ``until``: anchors made after it are skipped
    (a copy restored to that point in time cannot know them)."""
    checked = 0
    mismatches = 0
    first: str | None = None
    for item in anchors.anchors_parse(lines):
        if until is not None and isinstance(item, anchors.Anchor) and _anchored_after(item, until):
            continue
        checked += 1
        if isinstance(item, int):
            problem: str | None = f"anchor on line {item}: unreadable"
        else:
            try:
                problem = _anchor_problem(item, secret)
            except (KeyError, TypeError, ValueError):
                problem = f"anchor on line {item.line}: malformed"
        if problem is not None:
            mismatches += 1
            first = first or problem
    if checked == 0:
        first, mismatches = "no anchors found", 1
    return AnchorResult(
        ok=mismatches == 0, anchors_checked=checked, first_mismatch=first, mismatches=mismatches
    )


@dataclass
class ScopeState:
    purpose: Purpose
    channel: str
    decision: Decision


def consent_state(*, contact: Contact, at: datetime | None = None) -> list[ScopeState]:
    """The gate's answer for every purpose of the contact's brand and each channel it allows."""
    at = at or timezone.now()
    states = []
    for purpose in Purpose.objects.filter(brand_id=contact.brand_id).order_by("key"):
        for channel in purpose.channels:
            states.append(
                ScopeState(purpose, channel, check(contact=contact, channel=channel, purpose=purpose, at=at))
            )
    return states


def contact_events(*, contact: Contact) -> QuerySet[ConsentEvent]:
    return (
        ConsentEvent.objects.filter(Q(contact=contact) | Q(actor_contact=contact))
        .select_related("purpose", "notice")
        .order_by("occurred_at", "chain", "seq")
    )


def purpose_get(*, brand_id: int, key: str, field_name: str = "purpose") -> Purpose:
    purpose = Purpose.objects.filter(brand_id=brand_id, key=key).first()
    if purpose is None:
        raise InvalidInput(field_name, f"unknown purpose {key!r} for this contact's brand")
    return purpose


def event_get(*, event_id: int, field_name: str = "confirms_event_id") -> ConsentEvent:
    event = ConsentEvent.objects.select_related("contact", "purpose", "notice").filter(pk=event_id).first()
    if event is None:
        raise InvalidInput(field_name, f"unknown event {event_id}")
    return event


def suppression_get(*, suppression_id: int) -> Suppression:
    suppression = Suppression.objects.filter(pk=suppression_id).first()
    if suppression is None:
        raise NotFound(f"suppression {suppression_id} not found")
    return suppression


# --- consent freshness ----------------------------------------------------------------------


@dataclass
class FreshnessPreview:
    """Who loses their consent to ``purpose`` within ``days``: allowed now, denied then as
    ``stale_notice`` or ``consent_expired``; and who is already out for those reasons."""

    purpose_id: int
    days: int
    until: datetime
    falling_out: dict[str, list[int]] = field(default_factory=dict)  # channel -> contact ids
    already_out: dict[str, dict[str, int]] = field(default_factory=dict)  # channel -> reason -> n

    def contact_ids(self, channel: str) -> list[int]:
        return self.falling_out.get(channel, [])


FRESHNESS_REASONS = ("stale_notice", "consent_expired")
_FRESHNESS_CHUNK = 2000


def freshness_preview(
    *, purpose: Purpose, days: int, channel: str | None = None, now: datetime | None = None
) -> FreshnessPreview:
    """Run the gate now and ``days`` from now over every live contact of the purpose's brand
    (no writes). A refresh request must reach them before they fall out: after, the gate
    denies the refresh too."""
    if days < 0 or days > 3650:
        raise InvalidInput("days", "must be between 0 and 3650")
    now = now or timezone.now()
    until = now + timedelta(days=days)
    preview = FreshnessPreview(purpose_id=purpose.pk, days=days, until=until)
    channels = [channel] if channel else [c for c in ("email", "sms") if purpose.allows_channel(c)]
    for each in channels:
        if not purpose.allows_channel(each):
            raise InvalidInput("channel", f"purpose {purpose.key!r} does not allow {each}")
        contacts = Contact.objects.filter(brand_id=purpose.brand_id, erased_at__isnull=True)
        contacts = contacts.exclude(**{"email__isnull" if each == "email" else "mobile__isnull": True})
        ids = list(contacts.order_by("id").values_list("id", flat=True))
        falling: list[int] = []
        out: dict[str, int] = {}
        for start in range(0, len(ids), _FRESHNESS_CHUNK):
            chunk = list(Contact.objects.filter(pk__in=ids[start : start + _FRESHNESS_CHUNK]))
            today = check_many(contacts=chunk, channel=each, purpose=purpose)
            later = check_many(contacts=chunk, channel=each, purpose=purpose, at=until)
            for contact_id, decision in today.items():
                if decision.reason in FRESHNESS_REASONS:
                    out[decision.reason] = out.get(decision.reason, 0) + 1
                elif decision.allowed and later[contact_id].reason in FRESHNESS_REASONS:
                    falling.append(contact_id)
        preview.falling_out[each] = sorted(falling)
        preview.already_out[each] = out
    return preview
