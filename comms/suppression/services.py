"""Every write to the ledger and the suppression list goes through this module, and only here.

Each public function records one kind of fact (a grant, its confirmation, a withdrawal, an
objection, a restriction, a suppression, an erasure, a rectification): it runs in one
transaction, validates its input (raising ``InvalidInput`` naming the field), takes the address
lock where a withdrawal must be ordered against senders, appends its hash-chained event
(``appending``) and returns what it wrote. Purposes (``purposes``), the bulk import
(``imports``) and proofs (``proofs``) live beside it and are re-exported here, so callers keep
one door: ``services.<name>``.

Longer than 400 lines: eight services that share one set of rules (``rules``) read best side by
side, where a reviewer checks that each takes the locks and checks its siblings take.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from comms.contacts.addresses import normalise_address
from comms.contacts.models import Brand, Contact
from comms.errors import Conflict, Forbidden, InvalidInput
from comms.suppression.appending import (
    CLOCK_SKEW,
    Evidence,
    LedgerBroken,
    LedgerListener,
    NewEvent,
    Principal,
    append_one,
    chain_for,
    ledger_anchor_publish,
    ledger_chains,
    ledger_chains_set,
    ledger_checkpoint,
    ledger_listen,
    lock_for_append,
    locked_heads,
)
from comms.suppression.imports import (
    IMPORT_ACTIONS,
    IMPORT_CHUNK,
    ConsentImportError,
    ConsentImportResult,
    ConsentImportRow,
    consents_import,
)
from comms.suppression.keys import address_key
from comms.suppression.locks import withdrawal_lock
from comms.suppression.models import (
    PERSON_CAUSED_REASONS,
    STAFF_LIFTABLE_REASONS,
    Action,
    Actor,
    Channel,
    ConsentEvent,
    ConsentEvidence,
    Purpose,
    Suppression,
    SuppressionChannel,
    SuppressionReason,
)
from comms.suppression.proofs import (
    PROOF_TYPES,
    proof_store,
    proofs_delete,
)
from comms.suppression.purposes import (
    purpose_create,
    purpose_notice_publish,
    purpose_update,
)
from comms.suppression.rules import (
    CHANNELS,
    DOUBLE_OPT_IN_SOURCES,
    check_live,
    check_principal,
    check_source,
    contact_keys,
    grant_checks,
    grant_notice,
    is_minor,
    latest_notice,
    on_postgres,
    person_blocked,
    suppress,
)

# The ledger's writing API, as callers have always found it here: this module's services and
# what the split-out modules (appending, purposes, imports, proofs) define.
__all__ = [
    "CLOCK_SKEW",
    "ConsentImportError",
    "ConsentImportResult",
    "ConsentImportRow",
    "DOUBLE_OPT_IN_SOURCES",
    "Evidence",
    "IMPORT_ACTIONS",
    "IMPORT_CHUNK",
    "LedgerBroken",
    "LedgerListener",
    "NewEvent",
    "PROOF_TYPES",
    "Principal",
    "RECTIFIABLE_FIELDS",
    "consent_confirm",
    "consent_grant",
    "consent_withdraw",
    "consents_import",
    "erasure_record",
    "evidence_redact",
    "ledger_anchor_publish",
    "ledger_chains",
    "ledger_chains_set",
    "ledger_checkpoint",
    "ledger_listen",
    "objection_record",
    "proof_store",
    "proofs_delete",
    "purpose_create",
    "purpose_notice_publish",
    "purpose_update",
    "rectification_record",
    "restriction_lift",
    "restriction_set",
    "suppression_add",
    "suppression_lift",
]

logger = logging.getLogger(__name__)


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
    # On PostgreSQL the latest notice version comes with the append's locks (one round trip).
    latest = notice_version is None and on_postgres()
    key = grant_checks(
        contact=contact,
        channel=channel,
        purpose=purpose,
        basis=basis,
        source=source,
        principal=principal,
        occurred_at=occurred_at,
    )
    notice = None if latest else grant_notice(purpose, notice_version)
    with transaction.atomic():
        # Decided under the chain head's lock: a withdrawal committed just before is seen.
        locked = (
            lock_for_append(
                [contact], events=1, suppression_keys=[key], notice_purposes=[purpose.pk] if latest else ()
            )
            if on_postgres()
            else None
        )
        if latest:
            assert locked is not None
            notice = latest_notice(purpose, locked)
        pending = (
            require_confirmation
            or source in DOUBLE_OPT_IN_SOURCES
            or person_blocked(contact, channel, purpose, key, locked=locked)
        )
        return append_one(
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
    check_source(source)
    if grant.action != Action.GRANT:
        raise InvalidInput("confirms_event_id", "is not a grant")
    if not grant.pending_confirmation:
        raise Conflict("that grant needs no confirmation")
    if principal.actor not in (Actor.SELF, Actor.GUARDIAN):
        raise InvalidInput("actor", "only the person (or their guardian) can confirm a consent")
    contact = grant.contact
    assert contact is not None
    check_live(contact)
    check_principal(contact, principal)
    if occurred_at is not None and occurred_at < grant.occurred_at:
        raise InvalidInput("occurred_at", "a confirmation cannot come before the grant it confirms")
    if principal.actor != Actor.GUARDIAN and is_minor(contact, occurred_at or timezone.now()):
        raise InvalidInput("actor", "the contact is a minor: their linked guardian confirms")
    with transaction.atomic():
        # Two confirmations of the same link must not both pass the check. They append to the
        # same chain, so its head lock (taken again by append_one) orders them; a row lock on the
        # grant would need UPDATE on the ledger, which the service role does not hold.
        locked = lock_for_append([contact], events=1) if on_postgres() else None
        if locked is None:
            locked_heads([chain_for(contact.pk, ledger_chains())])
        if ConsentEvent.objects.filter(action=Action.CONFIRM, confirms=grant).exists():
            raise Conflict("that grant is already confirmed")
        event = append_one(
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
                suppress(
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
    check_source(source)
    check_principal(contact, principal)
    if channel is not None and channel not in CHANNELS:
        raise InvalidInput("channel", f"must be one of {', '.join(Channel.values)}")
    if purpose is not None:
        if purpose.brand_id != contact.brand_id:
            raise InvalidInput("purpose", "belongs to another brand than the contact")
        if channel is None:
            raise InvalidInput("channel", "a withdrawal for one purpose names its channel")
    channels = [channel] if channel else list(Channel.values)
    keys = contact_keys(contact, channels)
    with transaction.atomic():
        locked = None
        if on_postgres():  # the address locks and the chain head in one round trip
            locked = lock_for_append([contact], events=1, address_locks=keys.values())
        else:
            withdrawal_lock(keys.values())
        primary_key = keys.get(channel or "", "") if channel else next(iter(keys.values()), "")
        event = append_one(
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
                suppress(
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
    check_source(source)
    check_principal(contact, principal)
    keys = contact_keys(contact, Channel.values)
    with transaction.atomic():
        withdrawal_lock(keys.values())
        event = append_one(
            action=Action.OBJECT,
            source=source,
            principal=principal,
            contact=contact,
            key=keys.get(Channel.EMAIL) or keys.get(Channel.SMS) or "",
            occurred_at=occurred_at,
            evidence=evidence,
        )
        for key in keys.values():
            suppress(
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
    check_source(source)
    check_live(contact)
    check_principal(contact, principal)
    keys = contact_keys(contact, Channel.values)
    with transaction.atomic():
        withdrawal_lock(keys.values())
        if _is_restricted(contact):
            raise Conflict(f"contact {contact.pk} is already restricted")
        return append_one(
            action=Action.RESTRICT,
            source=source,
            principal=principal,
            contact=contact,
            occurred_at=occurred_at,
        )


def restriction_lift(
    *, contact: Contact, source: str, principal: Principal, occurred_at: datetime | None = None
) -> ConsentEvent:
    check_source(source)
    check_principal(contact, principal)
    with transaction.atomic():
        if not _is_restricted(contact):
            raise Conflict(f"contact {contact.pk} is not restricted")
        return append_one(
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
    check_source(source)
    if channel not in SuppressionChannel.values:
        raise InvalidInput("channel", f"must be one of {', '.join(SuppressionChannel.values)}")
    if reason not in SuppressionReason.values:
        raise InvalidInput("reason", f"must be one of {', '.join(SuppressionReason.values)}")
    kinds = [channel] if channel != SuppressionChannel.ALL else ["email" if "@" in address else "sms"]
    normalised = normalise_address(kinds[0], address)
    key = address_key(kinds[0], normalised)
    with transaction.atomic():
        withdrawal_lock([key])
        event = append_one(
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
        return event, suppress(key=key, channel=channel, brand=brand, reason=reason, event=event)


def suppression_lift(*, suppression: Suppression, source: str, principal: Principal) -> ConsentEvent:
    """Staff may clear a bounce or an operator block. What the person caused, or an erasure,
    only the person's own confirmed consent can lift (see ``consent_confirm``)."""
    check_source(source)
    if suppression.reason not in STAFF_LIFTABLE_REASONS:
        raise Forbidden(
            f"a {suppression.reason} suppression is lifted only by the person's own consent, confirmed by double opt-in"
        )
    with transaction.atomic():
        locked = Suppression.objects.select_for_update().get(pk=suppression.pk)
        if locked.lifted_at is not None:
            raise Conflict("that suppression is already lifted")
        event = append_one(
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
    keys = contact_keys(contact, Channel.values)
    withdrawal_lock(keys.values())
    event = append_one(
        action=Action.ERASE,
        source=source,
        principal=principal,
        contact=contact,
        key=keys.get(Channel.EMAIL) or keys.get(Channel.SMS) or "",
        reason=SuppressionReason.ERASED,
    )
    for channel, key in keys.items():
        suppress(key=key, channel=channel, brand=None, reason=SuppressionReason.ERASED, event=event)
    return event


RECTIFIABLE_FIELDS = ("first_name", "last_name", "birth_date", "email", "mobile", "guardian")


def rectification_record(
    *, contact: Contact, fields: Iterable[str], source: str, principal: Principal
) -> list[ConsentEvent]:
    """Record a rectification (art. 16) already made to ``contact``: one ``rectify`` event per
    changed field, its name in ``reason`` and never its value. A new email or mobile is named by
    its keyed hash (empty when the address was removed), so the ledger knows which address the
    contact's later events are about. Runs in the caller's transaction, after the change."""
    check_source(source)
    given = set(fields)
    changed = [name for name in RECTIFIABLE_FIELDS if name in given]
    unknown = given - set(RECTIFIABLE_FIELDS)
    if unknown:
        raise InvalidInput("fields", f"not personal data that is rectified: {', '.join(sorted(unknown))}")
    events = []
    with transaction.atomic():
        for name in changed:
            channel = {"email": Channel.EMAIL, "mobile": Channel.SMS}.get(name, "")
            key = contact_keys(contact, [channel]).get(channel, "") if channel else ""
            events.append(
                append_one(
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
    for name in fields:
        if name not in allowed:
            raise InvalidInput("fields", f"unknown evidence field {name!r}")
        changes[name] = None if name == "ip" else ""
    return ConsentEvidence.objects.filter(event_id__in=list(events)).update(
        redacted_at=timezone.now(), **changes
    )


