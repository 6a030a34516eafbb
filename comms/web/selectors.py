"""Reads for the member pages: what a link names, and where the person stands in each scope."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from comms.campaigns.models import Delivery
from comms.contacts.models import Brand, Contact
from comms.links import BadToken, ExpiredToken, make_token, read_rights_token, read_token
from comms.suppression.gate import Decision, Reason, check
from comms.suppression.keys import address_key
from comms.suppression.models import (
    PERSON_CAUSED_REASONS,
    Action,
    Basis,
    ConsentEvent,
    Purpose,
    PurposeNotice,
)

_SHORT_CODE = re.compile(r"[A-Za-z0-9]{6,12}")
_LEDGER_ACTIONS = (Action.GRANT, Action.CONFIRM, Action.WITHDRAW, Action.OBJECT)


class Scope(StrEnum):
    """What an unsubscribe covers: one purpose on the link's channel, every purpose on that
    channel (a withdrawal with no purpose), or all marketing (an objection, art. 21)."""

    PURPOSE = "purpose"
    CHANNEL = "channel"
    ALL = "all"


@dataclass(frozen=True)
class MemberLink:
    """A verified member link: the contact it names, on the address it was sent to."""

    contact: Contact
    channel: str
    purpose: Purpose | None
    address: str
    address_key: str

    @property
    def brand(self) -> Brand:
        return self.contact.brand


def member_link_resolve(token: str, *, need_purpose: bool, rights: bool = False) -> MemberLink:
    """Check a ``/u/`` or ``/preferences/`` token (with ``rights``, a ``/rights/`` token) and load
    what it names. Raises ``ExpiredToken`` or ``BadToken`` (tampered, truncated, unknown contact
    or purpose, or an address that is no longer the contact's: a link is useless to anyone but
    the person it was sent to)."""
    data = read_rights_token(token) if rights else read_token(token)
    contact = (
        Contact.objects.select_related("brand").filter(pk=data.contact_id, erased_at__isnull=True).first()
    )
    if contact is None:
        raise BadToken("unknown contact")
    address = contact.address_for(data.channel)
    if not address or len(data.address_key_prefix) != 12:
        raise BadToken("no such address")
    key = address_key(data.channel, address)
    if not key.startswith(data.address_key_prefix):
        raise BadToken("the link was sent to another address")
    purpose = None
    if data.purpose_id:
        purpose = Purpose.objects.filter(pk=data.purpose_id, brand_id=contact.brand_id).first()
        if purpose is None:
            raise BadToken("unknown purpose")
    if need_purpose and purpose is None:
        raise BadToken("the link names no purpose")
    return MemberLink(
        contact=contact, channel=data.channel, purpose=purpose, address=address, address_key=key
    )


def short_link_token(code: str) -> str:
    """The member token behind an SMS short link ``/s/{code}``. Short links expire like the
    long ones, counted from when the message was sent."""
    if not _SHORT_CODE.fullmatch(code):
        raise BadToken("not a short code")
    delivery = (
        Delivery.objects.select_related("campaign", "contact")
        .filter(short_code=code)
        .only("channel", "address_key", "sent_at", "created_at", "contact", "campaign__purpose_id")
    ).first()
    if delivery is None:
        raise BadToken("unknown short code")
    sent = delivery.sent_at or delivery.created_at
    if sent + timedelta(seconds=settings.MEMBER_LINK_MAX_AGE) < timezone.now():
        raise ExpiredToken("the link has expired")
    key = delivery.address_key
    if not key:
        address = delivery.contact.address_for(delivery.channel)
        if not address:
            raise BadToken("no such address")
        key = address_key(delivery.channel, address)
    return make_token(
        contact_id=delivery.contact_id,
        purpose_id=delivery.campaign.purpose_id,
        channel=delivery.channel,
        address_key=key,
    )


def _covers(scope: Scope, channel: str, purpose_id: int | None, event: tuple[str, str, int | None]) -> int:
    """+1 if the event puts the person into the scope (a grant, pending or not, or a
    confirmation overlapping it), -1 if it takes them out of all of it, 0 if neither."""
    action, event_channel, event_purpose = event
    same_channel = event_channel in ("", channel)
    if action in (Action.GRANT, Action.CONFIRM):
        if scope == Scope.ALL:
            return 1
        if scope == Scope.CHANNEL:
            return 1 if same_channel else 0
        return 1 if same_channel and event_purpose in (None, purpose_id) else 0
    if action == Action.OBJECT:
        return -1
    if action == Action.WITHDRAW and same_channel:
        if scope == Scope.PURPOSE and event_purpose in (None, purpose_id):
            return -1
        if scope == Scope.CHANNEL and event_purpose is None:
            return -1
    return 0


def unsubscribe_already_done(*, link: MemberLink, scope: Scope) -> bool:
    """Has the person already left this scope, with nothing since that would bring them back (not
    even a grant awaiting confirmation)? Then a repeated unsubscribe records nothing new: link
    scanners and impatient double clicks must not grow the ledger."""
    events = (
        ConsentEvent.objects.filter(contact=link.contact, action__in=_LEDGER_ACTIONS)
        .order_by("occurred_at", "chain", "seq")
        .values_list("action", "channel", "purpose_id")
    )
    purpose_id = link.purpose.pk if link.purpose else None
    last = 0
    for event in events:
        last = _covers(scope, link.channel, purpose_id, event) or last
    return last < 0


# --- the preference centre --------------------------------------------------------------------


class Status(StrEnum):
    ON = "on"
    PENDING = "pending"
    OFF = "off"
    WITHDRAWN = "withdrawn"
    RENEW = "renew"
    UNAVAILABLE = "unavailable"


_PERSON_DENIALS = {Reason.WITHDRAWN.value, Reason.OBJECTION.value} | {
    f"{Reason.SUPPRESSED}:{reason}" for reason in PERSON_CAUSED_REASONS
}
_RENEW = {Reason.STALE_NOTICE.value, Reason.CONSENT_EXPIRED.value}
_OFF = {
    Reason.NO_CONSENT.value,
    Reason.AWAITING_CONFIRMATION.value,
    Reason.SOFT_OPT_IN_NOT_APPLICABLE.value,
    Reason.BASIS_NOT_PERMITTED.value,
}


@dataclass(frozen=True)
class PreferenceRow:
    purpose: Purpose
    notice: PurposeNotice | None
    decision: Decision
    status: Status
    pending_grant_id: int | None
    renewable: bool = False  # allowed now, but to an older notice or near the end of its lifetime

    @property
    def subscribed(self) -> bool:
        """Ticked in the form: allowed now, or waiting for the person's confirmation."""
        return self.status in (Status.ON, Status.PENDING)


def _pending_grants(contact: Contact, channel: str) -> dict[int, int]:
    """purpose id -> the grant awaiting confirmation that is the person's last word there."""
    events = (
        ConsentEvent.objects.filter(contact=contact, action__in=_LEDGER_ACTIONS)
        .order_by("occurred_at", "chain", "seq")
        .values_list("pk", "action", "channel", "purpose_id", "pending_confirmation")
    )
    pending: dict[int, int] = {}
    for pk, action, event_channel, purpose_id, waiting in events:
        if event_channel not in ("", channel):
            continue
        if action == Action.GRANT and waiting and purpose_id is not None:
            pending[purpose_id] = pk
        elif action in (Action.GRANT, Action.CONFIRM, Action.WITHDRAW, Action.OBJECT):
            if purpose_id is None:
                pending.clear()
            else:
                pending.pop(purpose_id, None)
    return pending


def _status(decision: Decision, pending: bool) -> Status:
    if decision.allowed:
        return Status.ON
    if pending:
        return Status.PENDING
    if decision.reason in _RENEW:
        return Status.RENEW
    if decision.reason in _PERSON_DENIALS:
        return Status.WITHDRAWN
    if decision.reason in _OFF:
        return Status.OFF
    # Restricted processing, a minor without a guardian's consent, a bounced or erased address.
    return Status.UNAVAILABLE


def preference_rows(*, link: MemberLink) -> list[PreferenceRow]:
    """Every purpose of the brand on the link's channel, with the gate's live decision."""
    pending = _pending_grants(link.contact, link.channel)
    purposes = Purpose.objects.filter(brand_id=link.contact.brand_id).order_by("name", "key")
    rows = []
    for purpose in purposes:
        if not purpose.allows_channel(link.channel):
            continue
        decision = check(contact=link.contact, channel=link.channel, purpose=purpose, address=link.address)
        notice = purpose.current_notice()
        rows.append(
            PreferenceRow(
                purpose=purpose,
                notice=notice,
                decision=decision,
                status=_status(decision, purpose.pk in pending),
                pending_grant_id=pending.get(purpose.pk),
                renewable=purpose.pk not in pending and _renewable(decision, purpose, notice),
            )
        )
    return rows


def _renewable(decision: Decision, purpose: Purpose, notice: PurposeNotice | None) -> bool:
    """May the person renew this consent now (a consent refresh, DESIGN §3)? When it was given to
    an older notice than the current one, or expires within ``COMMS_CONSENT_REFRESH_WINDOW_DAYS``."""
    if not decision.allowed or decision.event_id is None or notice is None:
        return False
    event = ConsentEvent.objects.select_related("confirms__notice", "notice").get(pk=decision.event_id)
    grant = event.confirms or event
    if grant.basis != Basis.CONSENT:
        return False
    if (grant.notice.version if grant.notice else 0) < notice.version:
        return True
    lifetime = purpose.consent_lifetime_days
    if lifetime is None:
        return False
    renew_from = grant.occurred_at + timedelta(days=lifetime - settings.CONSENT_REFRESH_WINDOW_DAYS)
    return renew_from <= timezone.now()


# --- double opt-in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmState:
    contact: Contact
    grants: list[ConsentEvent]
    open: list[ConsentEvent]  # may still be confirmed
    confirmed: list[ConsentEvent]
    cancelled: list[ConsentEvent]  # stopped since, or the address changed


def _stopped_since(grant: ConsentEvent, contact: Contact) -> bool:
    """A withdrawal or objection after the grant, in its scope: its link must not revive it."""
    later = (
        ConsentEvent.objects.filter(contact=contact, action__in=[Action.WITHDRAW, Action.OBJECT])
        .filter(
            Q(recorded_at__gt=grant.recorded_at)
            | Q(recorded_at=grant.recorded_at, chain=grant.chain, seq__gt=grant.seq)
        )
        .values_list("action", "channel", "purpose_id")
    )
    return any(_covers(Scope.PURPOSE, grant.channel, grant.purpose_id, event) < 0 for event in later)


def confirm_state(*, grant_ids: list[int]) -> ConfirmState:
    """Where each grant named by a confirmation link stands. Raises ``BadToken`` when the link
    names no such grants, grants of several people, or events that are not pending grants."""
    grants = list(
        ConsentEvent.objects.select_related("contact", "contact__brand", "purpose", "notice")
        .filter(pk__in=grant_ids, action=Action.GRANT, pending_confirmation=True)
        .order_by("pk")
    )
    if len(grants) != len(set(grant_ids)) or len({g.contact_id for g in grants}) != 1:
        raise BadToken("the link names no such grants")
    contact = grants[0].contact
    if contact is None or grants[0].purpose is None:
        raise BadToken("the link names no such grants")
    confirmed_ids = set(
        ConsentEvent.objects.filter(action=Action.CONFIRM, confirms__in=grants).values_list(
            "confirms_id", flat=True
        )
    )
    open_, confirmed, cancelled = [], [], []
    for grant in grants:
        address = contact.address_for(grant.channel) if contact.erased_at is None else None
        if grant.pk in confirmed_ids:
            confirmed.append(grant)
        elif (
            not address
            or address_key(grant.channel, address) != grant.address_key
            or _stopped_since(grant, contact)
        ):
            cancelled.append(grant)
        else:
            open_.append(grant)
    return ConfirmState(contact, grants, open_, confirmed, cancelled)
