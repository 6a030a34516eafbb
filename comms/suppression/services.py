"""Every write to the ledger, the suppression list and the purposes happens here, and only here.

Each public function runs in one transaction, validates its input (raising ``InvalidInput``
naming the field), takes the address lock where a withdrawal must be ordered against senders,
appends its hash-chained event and returns what it wrote.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from comms.contacts.models import Brand, Contact
from comms.errors import Conflict, Forbidden, InvalidInput
from comms.suppression import anchors, chain
from comms.suppression.keys import address_key
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
    LedgerCheckpoint,
    ProofFile,
    Purpose,
    PurposeNotice,
    Source,
    Suppression,
    SuppressionChannel,
    SuppressionReason,
)

logger = logging.getLogger(__name__)

# Grants from these sources always wait for double opt-in (the address is not yet proven).
DOUBLE_OPT_IN_SOURCES = frozenset({Source.WEB_FORM, Source.PREFERENCE_CENTRE, Source.SMS_KEYWORD})
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


def _locked_head(chain_number: int) -> ChainHead:
    head = ChainHead.objects.select_for_update().filter(chain=chain_number).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            ChainHead.objects.create(chain=chain_number, seq=0, hash=GENESIS_HASH)
    except IntegrityError:
        pass  # another transaction created it first; lock theirs
    return ChainHead.objects.select_for_update().get(chain=chain_number)


def _append(
    *,
    action: str,
    source: str,
    principal: Principal,
    contact: Contact | None = None,
    brand: Brand | None = None,
    key: str = "",
    channel: str = "",
    purpose: Purpose | None = None,
    basis: str = "",
    notice: PurposeNotice | None = None,
    confirms: ConsentEvent | None = None,
    pending_confirmation: bool = False,
    opt_out_offered: bool = False,
    reason: str = "",
    occurred_at: datetime | None = None,
    evidence: Evidence | None = None,
) -> ConsentEvent:
    """Append one event to its chain. The chain head's row lock serialises appends."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger appends must run inside a transaction")
    now = timezone.now()
    occurred = occurred_at or now
    if occurred > now + CLOCK_SKEW:
        raise InvalidInput("occurred_at", "lies in the future")
    head = _locked_head(_chain_for(contact.pk if contact else None))
    evidence = evidence if evidence is not None and not evidence.is_empty() else None
    event = ConsentEvent(
        chain=head.chain,
        seq=head.seq + 1,
        contact=contact,
        brand=brand or (contact.brand if contact else None),
        address_key=key,
        channel=channel,
        purpose=purpose,
        action=action,
        basis=basis,
        source=source,
        actor=principal.actor,
        actor_user=principal.user,
        actor_contact=principal.guardian,
        recorded_by=principal.recorded_by[:100],
        notice=notice,
        confirms=confirms,
        pending_confirmation=pending_confirmation,
        opt_out_offered=opt_out_offered,
        reason=reason,
        occurred_at=occurred,
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
    event.save(force_insert=True)
    if evidence:
        ConsentEvidence.objects.create(
            event=event, ip=evidence.ip, user_agent=evidence.user_agent, proof_sha256=evidence.proof_sha256
        )
    head.seq, head.hash = event.seq, event.hash
    head.save(update_fields=["seq", "hash", "updated_at"])
    for listener in _listeners:
        listener(event)
    return event


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
    if principal.actor not in Actor.values:
        raise InvalidInput("actor", f"must be one of {', '.join(Actor.values)}")
    if principal.actor == Actor.GUARDIAN:
        if principal.guardian is None:
            raise InvalidInput("actor_contact_id", "a guardian's action must name the guardian contact")
        if contact.guardian_id is None or principal.guardian.pk != contact.guardian_id:
            raise InvalidInput("actor_contact_id", "is not this contact's linked guardian")
    elif principal.guardian is not None:
        raise InvalidInput("actor_contact_id", "only a guardian's action names an actor contact")


def _check_source(source: str) -> None:
    if source not in Source.values:
        raise InvalidInput("source", f"must be one of {', '.join(Source.values)}")


def _check_live(contact: Contact) -> None:
    if contact.erased_at is not None:
        raise Conflict(f"contact {contact.pk} is erased")


def _is_minor(contact: Contact, at: datetime) -> bool:
    age = contact.age_on(timezone.localdate(at))
    return age is not None and age < settings.DIGITAL_CONSENT_AGE


def _person_blocked(contact: Contact, channel: str, purpose: Purpose, key: str) -> bool:
    """Did the person withdraw or object in this scope (or suppress the address) without a
    confirmed consent since? Then a new grant must wait for their double opt-in."""
    if Suppression.objects.filter(
        Q(brand__isnull=True) | Q(brand=contact.brand_id),
        address_key=key,
        channel__in=[channel, SuppressionChannel.ALL],
        reason__in=PERSON_CAUSED_REASONS,
        lifted_at__isnull=True,
    ).exists():
        return True
    scoped = ConsentEvent.objects.filter(
        Q(channel="") | Q(channel=channel),
        Q(purpose__isnull=True) | Q(purpose=purpose),
        contact=contact,
    )
    last_negative = (
        scoped.filter(action__in=[Action.WITHDRAW, Action.OBJECT]).order_by("-occurred_at", "-seq").first()
    )
    if last_negative is None:
        return False
    return not scoped.filter(
        Q(action=Action.CONFIRM) | Q(action=Action.GRANT, pending_confirmation=False),
        occurred_at__gt=last_negative.occurred_at,
    ).exists()


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
    _check_live(contact)
    _check_source(source)
    if channel not in Channel.values:
        raise InvalidInput("channel", f"must be one of {', '.join(Channel.values)}")
    if purpose.brand_id != contact.brand_id:
        raise InvalidInput("purpose", "belongs to another brand than the contact")
    if not purpose.allows_channel(channel):
        raise InvalidInput("channel", f"purpose {purpose.key!r} does not allow {channel}")
    if basis not in Basis.values:
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
    notices = purpose.notices.all()
    notice = (
        notices.filter(version=notice_version).first()
        if notice_version is not None
        else notices.order_by("-version").first()
    )
    if notice is None:
        raise InvalidInput(
            "notice_version", f"purpose {purpose.key!r} has no notice version {notice_version}"
        )
    key = address_key(channel, address)
    with transaction.atomic():
        pending = (
            require_confirmation
            or source in DOUBLE_OPT_IN_SOURCES
            or _person_blocked(contact, channel, purpose, key)
        )
        return _append(
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
        _locked_head(_chain_for(contact.pk))
        if ConsentEvent.objects.filter(action=Action.CONFIRM, confirms=grant).exists():
            raise Conflict("that grant is already confirmed")
        event = _append(
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
    if channel is not None and channel not in Channel.values:
        raise InvalidInput("channel", f"must be one of {', '.join(Channel.values)}")
    if purpose is not None:
        if purpose.brand_id != contact.brand_id:
            raise InvalidInput("purpose", "belongs to another brand than the contact")
        if channel is None:
            raise InvalidInput("channel", "a withdrawal for one purpose names its channel")
    channels = [channel] if channel else list(Channel.values)
    keys = _contact_keys(contact, channels)
    with transaction.atomic():
        withdrawal_lock(keys.values())
        primary_key = keys.get(channel or "", "") if channel else next(iter(keys.values()), "")
        event = _append(
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


def evidence_redact(*, events: Iterable[int], fields: Iterable[str] = ("ip", "user_agent")) -> int:
    """Drop personal data from evidence rows (retention, erasure). The chain is untouched."""
    allowed = {"ip", "user_agent", "proof_sha256"}
    changes: dict[str, Any] = {}
    for field in fields:
        if field not in allowed:
            raise InvalidInput("fields", f"unknown evidence field {field!r}")
        changes[field] = None if field == "ip" else ""
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
