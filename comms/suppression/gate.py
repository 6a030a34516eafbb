"""The gate: one function that decides whether one message may go to one address.

Every send path calls ``check`` right before the hand-off to a provider, holding the sender's
lock (``comms.suppression.locks.sender_lock``). Precedence, first match wins (DESIGN §3):

1. the address is suppressed for this channel or all marketing      -> ``suppressed:<reason>``
2. the contact objected to direct marketing (art. 21)               -> ``objection``
3. processing is restricted (art. 18)                               -> ``restricted``
4. the latest event for the scope is a withdrawal                   -> ``withdrawn``
5. a minor whose grant did not come from the linked guardian        -> ``minor_without_guardian``
6. consent allows; soft opt-in only with purpose, purchase, opt-out -> ``consent`` / ``soft_opt_in``
7. a grant to a notice below the minimum, or older than the lifetime -> ``stale_notice`` / ``consent_expired``
8. nothing                                                          -> ``no_consent``
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from comms.contacts.models import Contact, ContactKind
from comms.core.metrics import gate_observed
from comms.suppression.keys import address_key
from comms.suppression.models import (
    Action,
    Actor,
    Basis,
    ConsentEvent,
    Purpose,
    Suppression,
    SuppressionChannel,
)


class Reason(StrEnum):
    CONSENT = "consent"
    SOFT_OPT_IN = "soft_opt_in"
    CONTRACT = "contract"
    SUPPRESSED = "suppressed"  # always reported as suppressed:<suppression reason>
    OBJECTION = "objection"
    RESTRICTED = "restricted"
    WITHDRAWN = "withdrawn"
    MINOR_WITHOUT_GUARDIAN = "minor_without_guardian"
    SOFT_OPT_IN_NOT_APPLICABLE = "soft_opt_in_not_applicable"
    BASIS_NOT_PERMITTED = "basis_not_permitted"
    STALE_NOTICE = "stale_notice"
    CONSENT_EXPIRED = "consent_expired"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    NO_CONSENT = "no_consent"
    NO_ADDRESS = "no_address"
    CHANNEL_NOT_ALLOWED = "channel_not_allowed"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    event_id: int | None = None

    @classmethod
    def deny(cls, reason: str, event_id: int | None = None) -> Decision:
        return cls(False, reason, event_id)


_SCOPE_ACTIONS = (
    Action.GRANT,
    Action.CONFIRM,
    Action.WITHDRAW,
    Action.OBJECT,
    Action.RESTRICT,
    Action.LIFT_RESTRICTION,
)


@dataclass
class _Scope:
    """What the contact's events say about one (channel, purpose), folded in time order."""

    grant: ConsentEvent | None = None  # the effective grant (for a confirm: the grant it confirms)
    positive: ConsentEvent | None = None  # the event that made it effective
    pending: ConsentEvent | None = None
    objection: ConsentEvent | None = None
    withdrawal: ConsentEvent | None = None
    restriction: ConsentEvent | None = None


def _fold(events: list[ConsentEvent]) -> _Scope:
    scope = _Scope()
    for event in events:
        if event.action == Action.RESTRICT:
            scope.restriction = event
        elif event.action == Action.LIFT_RESTRICTION:
            scope.restriction = None
        elif event.action == Action.GRANT and event.pending_confirmation:
            scope.pending = event
        elif event.action in (Action.GRANT, Action.CONFIRM):
            scope.positive = event
            scope.grant = event.confirms if event.action == Action.CONFIRM else event
            scope.pending = None
            scope.objection = scope.withdrawal = None
        elif event.action == Action.OBJECT:
            scope.objection = event
        elif event.action == Action.WITHDRAW:
            scope.withdrawal = event
            scope.pending = None
    return scope


def check(
    *,
    contact: Contact,
    channel: str,
    purpose: Purpose,
    address: str | None = None,
    at: datetime | None = None,
) -> Decision:
    """Decide whether a ``channel`` message for ``purpose`` may go to ``contact`` at ``address``
    (normalised; the contact's own address by default): now, on everything committed, or as the
    ledger stood at ``at``."""
    addresses = {contact.pk: address} if address else None
    return check_many(contacts=[contact], channel=channel, purpose=purpose, addresses=addresses, at=at)[
        contact.pk
    ]


def check_many(
    *,
    contacts: Sequence[Contact],
    channel: str,
    purpose: Purpose,
    addresses: Mapping[int, str] | None = None,
    at: datetime | None = None,
) -> dict[int, Decision]:
    """The same rules as ``check`` for many contacts at once, in three queries: the form the
    send path and campaign previews use. Returns a decision per contact id."""
    started = time.perf_counter()
    decisions = _check_many(contacts=contacts, channel=channel, purpose=purpose, addresses=addresses, at=at)
    if at is None:  # live decisions only; history queries are not gate traffic
        gate_observed(channel, decisions.values(), time.perf_counter() - started)
    return decisions


def _check_many(
    *,
    contacts: Sequence[Contact],
    channel: str,
    purpose: Purpose,
    addresses: Mapping[int, str] | None = None,
    at: datetime | None = None,
) -> dict[int, Decision]:
    live = at is None
    at = at or timezone.now()
    decisions: dict[int, Decision] = {}
    keys: dict[int, str] = {}
    for contact in contacts:
        if not purpose.allows_channel(channel) or purpose.brand_id != contact.brand_id:
            decisions[contact.pk] = Decision.deny(Reason.CHANNEL_NOT_ALLOWED)
            continue
        address = (addresses or {}).get(contact.pk) or contact.address_for(channel)
        if not address:
            decisions[contact.pk] = Decision.deny(Reason.NO_ADDRESS)
            continue
        keys[contact.pk] = address_key(channel, address)
    if not keys:
        return decisions

    # Live decisions (no ``at``) read everything committed, whatever its timestamp: a withdrawal
    # committed on a machine whose clock runs ahead must still count. ``at`` asks for history.
    suppression_rows = Suppression.objects.filter(
        Q(brand__isnull=True) | Q(brand_id=purpose.brand_id),
        address_key__in=set(keys.values()),
        channel__in=[channel, SuppressionChannel.ALL],
    )
    if live:
        suppression_rows = suppression_rows.filter(lifted_at__isnull=True)
    else:
        suppression_rows = suppression_rows.filter(
            Q(lifted_at__isnull=True) | Q(lifted_at__gt=at), created_at__lte=at
        )
    suppressions: dict[str, Suppression] = {}
    for suppression in suppression_rows.order_by("created_at", "id"):
        suppressions.setdefault(suppression.address_key, suppression)

    events: dict[int, list[ConsentEvent]] = {contact_id: [] for contact_id in keys}
    event_rows = ConsentEvent.objects.filter(
        Q(channel="") | Q(channel=channel),
        Q(purpose__isnull=True) | Q(purpose=purpose),
        contact_id__in=list(keys),
        action__in=_SCOPE_ACTIONS,
    )
    if not live:
        event_rows = event_rows.filter(recorded_at__lte=at)
    for event in event_rows.select_related("confirms", "confirms__notice", "notice").order_by(
        "occurred_at", "chain", "seq"
    ):
        events[event.contact_id].append(event)  # type: ignore[index]

    for contact in contacts:
        if contact.pk not in keys:
            continue
        blocking = suppressions.get(keys[contact.pk])
        if blocking is not None:
            decisions[contact.pk] = Decision.deny(
                f"{Reason.SUPPRESSED}:{blocking.reason}", blocking.source_event_id
            )
        else:
            decisions[contact.pk] = decide_from_events(contact, purpose, events[contact.pk], at)
    return decisions


def decide_from_events(
    contact: Contact, purpose: Purpose, events: list[ConsentEvent], at: datetime
) -> Decision:
    """Rules 2–8 over one scope's events (rule 1, suppression, is checked by the caller)."""
    scope = _fold(events)
    if scope.objection is not None:
        return Decision.deny(Reason.OBJECTION, scope.objection.pk)
    if scope.restriction is not None:
        return Decision.deny(Reason.RESTRICTED, scope.restriction.pk)
    if scope.withdrawal is not None:
        return Decision.deny(Reason.WITHDRAWN, scope.withdrawal.pk)
    grant, positive = scope.grant, scope.positive
    if grant is None or positive is None:
        if scope.pending is not None:
            return Decision.deny(Reason.AWAITING_CONFIRMATION, scope.pending.pk)
        return Decision.deny(Reason.NO_CONSENT)

    age = contact.age_on(timezone.localdate(at))
    if age is not None and age < settings.DIGITAL_CONSENT_AGE:
        by_guardian = (
            grant.actor == Actor.GUARDIAN
            and contact.guardian_id is not None
            and grant.actor_contact_id == contact.guardian_id
        )
        if not by_guardian:
            return Decision.deny(Reason.MINOR_WITHOUT_GUARDIAN, grant.pk)

    if grant.basis == Basis.SOFT_OPT_IN:
        qualifies = (
            purpose.allows_soft_opt_in
            and contact.kind != ContactKind.GUEST
            and contact.purchase_at is not None
            and grant.opt_out_offered
        )
        if not qualifies:
            return Decision.deny(Reason.SOFT_OPT_IN_NOT_APPLICABLE, grant.pk)
    elif grant.basis == Basis.CONTRACT and purpose.marketing:
        return Decision.deny(Reason.BASIS_NOT_PERMITTED, grant.pk)

    if purpose.min_notice_version is not None:
        version = grant.notice.version if grant.notice is not None else 0
        if version < purpose.min_notice_version:
            return Decision.deny(Reason.STALE_NOTICE, grant.pk)
    lifetime = purpose.consent_lifetime_days
    if lifetime is not None and grant.occurred_at + timedelta(days=lifetime) < at:
        return Decision.deny(Reason.CONSENT_EXPIRED, grant.pk)

    return Decision(True, str(grant.basis), positive.pk)
