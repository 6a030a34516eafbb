"""The gate: one function that decides whether one message may go to one address.

Every send path calls ``check`` / ``check_many`` right before the hand-off to a provider,
holding the sender's lock (``comms.suppression.locks.sender_lock``). Precedence, first match
wins (DESIGN §3):

1. the address is suppressed for this channel or all marketing      -> ``suppressed:<reason>``
2. the contact objected to direct marketing (art. 21)               -> ``objection``
3. processing is restricted (art. 18)                               -> ``restricted``
4. the latest event for the scope is a withdrawal                   -> ``withdrawn``
5. a minor whose grant did not come from the linked guardian        -> ``minor_without_guardian``
6. consent allows; soft opt-in only with purpose, purchase, opt-out -> ``consent`` / ``soft_opt_in``
7. a grant to a notice below the minimum, or older than the lifetime -> ``stale_notice`` / ``consent_expired``
8. nothing                                                          -> ``no_consent``

Live decisions (and decisions about a moment still to come) are one SQL statement over the
candidates, the consent state (``comms/suppression/state.py``) and the suppressions: the
same statement decides one message, a send batch and, counted by reason, a whole audience
(``audience_counts``), with no Python object per contact. History (``at`` in the past) folds
the events in Python (``decide_from_events``): the reference the state is verified against.

Longer than 400 lines: the precedence, its one SQL statement and the fold it is checked
against are read together (a reviewer compares each rule in the three).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from comms.contacts.models import Contact, ContactKind
from comms.core.metrics import gate_observed
from comms.suppression import bulk
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
from comms.suppression.state import SCOPE_ACTIONS


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


ALLOWED_REASONS = frozenset({Reason.CONSENT, Reason.SOFT_OPT_IN, Reason.CONTRACT})


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
    """The same rules as ``check`` for many contacts at once, in one statement: the form the
    send path uses for a batch. Returns a decision per contact id."""
    started = time.perf_counter()
    now = timezone.now()
    decisions: dict[int, Decision] = {}
    keys: dict[int, str] = {}
    for contact in contacts:
        if not purpose.allows_channel(channel) or purpose.brand_id != contact.brand_id:
            decisions[contact.pk] = Decision.deny(Reason.CHANNEL_NOT_ALLOWED)
            continue
        # The key of the address the message goes to, computed here from the address itself.
        address = (addresses or {}).get(contact.pk) or contact.address_for(channel)
        if not address:
            decisions[contact.pk] = Decision.deny(Reason.NO_ADDRESS)
            continue
        keys[contact.pk] = address_key(channel, address)
    if keys:
        if at is None or at >= now:
            decisions.update(_decide_keys(keys, channel=channel, purpose=purpose, at=at or now))
        else:
            decisions.update(_decide_history(contacts, keys, channel=channel, purpose=purpose, at=at))
    if at is None:  # live decisions only; history queries are not gate traffic
        gate_observed(channel, decisions.values(), time.perf_counter() - started)
    return decisions


def audience_counts(
    *, contacts: QuerySet[Contact], channel: str, purpose: Purpose, at: datetime | None = None
) -> Counter[str]:
    """The gate's decisions over a whole audience, counted by reason, in one SQL statement
    (the candidates are ``contacts`` with their stored address keys). For now or a moment to
    come; nothing is written."""
    if not purpose.allows_channel(channel):
        total = contacts.count()
        return Counter({Reason.CHANNEL_NOT_ALLOWED.value: total} if total else {})
    key_field = "email_key" if channel == "email" else "mobile_key"
    values = contacts.order_by().values_list(
        "id", "brand_id", key_field, "birth_date", "guardian_id", "kind", "purchase_at"
    )
    inner, inner_params = values.query.sql_with_params()
    candidates = (
        f"SELECT a.id, a.brand_id, a.{connection.ops.quote_name(key_field)} AS address_key,"
        f" a.birth_date, a.guardian_id, a.kind, a.purchase_at FROM ({inner}) AS a"
    )
    sql, params = _decision_sql(
        candidates, list(inner_params), channel=channel, purpose=purpose, at=at or timezone.now()
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT reason, COUNT(*) FROM ({sql}) AS decided GROUP BY reason", params)
        return Counter({reason: count for reason, count in cursor.fetchall()})


def _decide_keys(
    keys: Mapping[int, str], *, channel: str, purpose: Purpose, at: datetime
) -> dict[int, Decision]:
    ids, address_keys = list(keys), [keys[contact_id] for contact_id in keys]
    if connection.vendor == "postgresql":
        given = "SELECT * FROM unnest(%s::bigint[], %s::text[]) AS g(id, address_key)"
        given_params: list[Any] = [ids, address_keys]
        sup_filter: tuple[str, list[Any]] = ("s.address_key = ANY(%s::text[])", [address_keys])
    else:
        rows = ", ".join(["(%s, %s)"] * len(ids))
        given = f"SELECT column1 AS id, column2 AS address_key FROM (VALUES {rows})"
        given_params = [value for pair in zip(ids, address_keys, strict=True) for value in pair]
        sup_filter = (f"s.address_key IN ({', '.join(['%s'] * len(ids))})", list(address_keys))
    candidates = (
        "SELECT c.id, c.brand_id, g.address_key, c.birth_date, c.guardian_id, c.kind, c.purchase_at"
        f" FROM ({given}) AS g JOIN contacts_contact c ON c.id = g.id"
    )
    sql, params = _decision_sql(
        candidates, given_params, channel=channel, purpose=purpose, at=at, suppression_filter=sup_filter
    )
    if connection.vendor == "postgresql":
        # A prepared statement (planning it costs more than running it for a few contacts:
        # about 2 ms against 0.3 ms); its generic plan, index look-ups for a batch of
        # candidates, is the right one for every batch (settings: plan_cache_mode).
        decided = bulk.run(sql, params)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            decided = cursor.fetchall()
    return {
        contact_id: Decision(reason in ALLOWED_REASONS, reason, event_id)
        for contact_id, reason, event_id in decided
    }


def _minor_cutoff(day: date) -> date:
    """Born after this day: younger than the age of digital consent on ``day``."""
    years = settings.DIGITAL_CONSENT_AGE
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _decision_sql(
    candidates: str,
    candidate_params: list[Any],
    *,
    channel: str,
    purpose: Purpose,
    at: datetime,
    suppression_filter: tuple[str, list[Any]] | None = None,
) -> tuple[str, list[Any]]:
    """The gate's rules as one SELECT of (id, reason, event_id) over ``candidates`` (a SELECT of
    id, brand_id, address_key, birth_date, guardian_id, kind, purchase_at).

    Rule 1 joins the earliest active suppression of the address. Rules 2–8 combine three
    levels of consent state: the scope's own row (grants, confirmations, withdrawals of this
    purpose), the channel's row (withdrawals from every purpose of the channel) and the
    contact-wide row (objection, restriction, withdrawal from everything). A withdrawal or an
    objection counts when it comes after the latest effective grant in the fold's order (the
    ``*_order`` strings compare as (occurred_at, chain, seq)); a pending grant counts only
    while no grant was ever effective. Every comparison with a rule left unset (no minimum
    notice version, no lifetime) is NULL, so the rule does not fire.
    """
    pg = connection.vendor == "postgresql"

    def typed(sql_type: str) -> str:
        return f"%s::{sql_type}" if pg else "%s"

    def instant(value: datetime | None) -> Any:
        return value if pg or value is None else connection.ops.adapt_datetimefield_value(value)

    greatest = "GREATEST" if pg else "MAX"
    lifetime = purpose.consent_lifetime_days
    expired_before = at - timedelta(days=lifetime) if lifetime is not None else None
    sup_where, sup_params = suppression_filter or ("TRUE", [])
    sql = f"""
WITH cand AS ({candidates}),
sup AS (
    SELECT s.address_key, s.reason, s.source_event_id,
           ROW_NUMBER() OVER (PARTITION BY s.address_key ORDER BY s.created_at, s.id) AS rn
    FROM suppression_suppression s
    WHERE s.lifted_at IS NULL AND s.channel IN (%s, 'all')
      AND (s.brand_id IS NULL OR s.brand_id = %s) AND {sup_where}
),
x AS (
    SELECT c.id, c.brand_id, c.address_key, c.birth_date, c.guardian_id, c.kind, c.purchase_at,
           sp.reason AS sup_reason, sp.source_event_id AS sup_event_id,
           st.positive_event_id, COALESCE(st.positive_order, '') AS pos, st.grant_event_id,
           st.grant_basis, st.grant_actor, st.grant_actor_contact_id, st.grant_opt_out_offered,
           st.grant_notice_version, st.grant_occurred_at, st.pending_event_id,
           COALESCE(st.withdrawal_order, '') AS w_scope, st.withdrawal_event_id AS w_scope_id,
           COALESCE(ch.withdrawal_order, '') AS w_channel, ch.withdrawal_event_id AS w_channel_id,
           COALESCE(al.withdrawal_order, '') AS w_all, al.withdrawal_event_id AS w_all_id,
           COALESCE(al.objection_order, '') AS obj, al.objection_event_id,
           COALESCE(al.restricted, FALSE) AS restricted, al.restriction_event_id
    FROM cand c
    LEFT JOIN sup sp ON sp.address_key = c.address_key AND sp.rn = 1
    LEFT JOIN suppression_consentstate st
           ON st.contact_id = c.id AND st.channel = %s AND st.purpose_id = %s
    LEFT JOIN suppression_consentstate ch
           ON ch.contact_id = c.id AND ch.channel = %s AND ch.purpose_id IS NULL
    LEFT JOIN suppression_consentstate al
           ON al.contact_id = c.id AND al.channel = '' AND al.purpose_id IS NULL
),
y AS (SELECT x.*, {greatest}(w_scope, w_channel, w_all) AS wmax FROM x),
d AS (
    SELECT y.*, CASE
        WHEN brand_id <> %s THEN 'channel_not_allowed'
        WHEN address_key IS NULL OR address_key = '' THEN 'no_address'
        WHEN sup_reason IS NOT NULL THEN 'suppressed:' || sup_reason
        WHEN obj > pos THEN 'objection'
        WHEN restricted THEN 'restricted'
        WHEN wmax > pos THEN 'withdrawn'
        WHEN positive_event_id IS NULL THEN
            CASE WHEN pending_event_id IS NOT NULL THEN 'awaiting_confirmation' ELSE 'no_consent' END
        WHEN birth_date IS NOT NULL AND birth_date > {typed("date")}
             AND NOT COALESCE(grant_actor = 'guardian' AND guardian_id IS NOT NULL
                              AND grant_actor_contact_id = guardian_id, FALSE)
            THEN 'minor_without_guardian'
        WHEN grant_basis = 'soft_opt_in'
             AND NOT COALESCE({typed("boolean")} AND kind <> %s AND purchase_at IS NOT NULL
                              AND grant_opt_out_offered, FALSE)
            THEN 'soft_opt_in_not_applicable'
        WHEN grant_basis = 'contract' AND {typed("boolean")} THEN 'basis_not_permitted'
        WHEN COALESCE(grant_notice_version, 0) < {typed("integer")} THEN 'stale_notice'
        WHEN grant_occurred_at < {typed("timestamptz")} THEN 'consent_expired'
        ELSE grant_basis
    END AS reason
    FROM y
)
SELECT id, reason, CASE
    WHEN reason LIKE 'suppressed:%%' THEN sup_event_id
    WHEN reason = 'objection' THEN objection_event_id
    WHEN reason = 'restricted' THEN restriction_event_id
    WHEN reason = 'withdrawn' THEN
        CASE WHEN wmax = w_scope THEN w_scope_id WHEN wmax = w_channel THEN w_channel_id ELSE w_all_id END
    WHEN reason = 'awaiting_confirmation' THEN pending_event_id
    WHEN reason IN ('consent', 'soft_opt_in', 'contract') THEN positive_event_id
    WHEN reason IN ('minor_without_guardian', 'soft_opt_in_not_applicable', 'basis_not_permitted',
                    'stale_notice', 'consent_expired') THEN grant_event_id
END AS event_id
FROM d
"""
    params: list[Any] = [
        *candidate_params,
        channel,
        purpose.brand_id,
        *sup_params,
        channel,
        purpose.pk,
        channel,
        purpose.brand_id,
        _minor_cutoff(timezone.localdate(at)),
        purpose.allows_soft_opt_in,
        ContactKind.GUEST.value,
        purpose.marketing,
        purpose.min_notice_version,
        instant(expired_before),
    ]
    return sql, params


def _decide_history(
    contacts: Sequence[Contact], keys: Mapping[int, str], *, channel: str, purpose: Purpose, at: datetime
) -> dict[int, Decision]:
    """The reference: fold the events recorded up to ``at`` (history questions)."""
    suppressions: dict[str, Suppression] = {}
    rows = Suppression.objects.filter(
        Q(brand__isnull=True) | Q(brand_id=purpose.brand_id),
        Q(lifted_at__isnull=True) | Q(lifted_at__gt=at),
        address_key__in=set(keys.values()),
        channel__in=[channel, SuppressionChannel.ALL],
        created_at__lte=at,
    )
    for suppression in rows.order_by("created_at", "id"):
        suppressions.setdefault(suppression.address_key, suppression)
    events = events_for_fold(list(keys), channel=channel, purpose=purpose, recorded_until=at)
    decisions: dict[int, Decision] = {}
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


def events_for_fold(
    contact_ids: Sequence[int], *, channel: str, purpose: Purpose, recorded_until: datetime | None = None
) -> dict[int, list[ConsentEvent]]:
    """Each contact's events of one scope in the fold's order (occurred_at, chain, seq)."""
    events: dict[int, list[ConsentEvent]] = {contact_id: [] for contact_id in contact_ids}
    rows = ConsentEvent.objects.filter(
        Q(channel="") | Q(channel=channel),
        Q(purpose__isnull=True) | Q(purpose=purpose),
        contact_id__in=list(contact_ids),
        action__in=SCOPE_ACTIONS,
    )
    if recorded_until is not None:
        rows = rows.filter(recorded_at__lte=recorded_until)
    for event in rows.select_related("confirms", "confirms__notice", "notice").order_by(
        "occurred_at", "chain", "seq"
    ):
        events[event.contact_id].append(event)  # type: ignore[index]
    return events


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
