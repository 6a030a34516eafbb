"""What the member pages change. The ledger itself is written only by
``comms.suppression.services``; these functions decide which of its services to call, make
repeats harmless, and queue the service messages (confirmations, fresh links) on commit.

Each runs in one transaction holding the contact's row lock, so two identical requests racing
(a scanner and a person, a double click) are serialised and the second sees the first's event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from comms.contacts.addresses import normalise_address
from comms.contacts.models import Contact
from comms.core import jobs
from comms.errors import Conflict, DomainError, InvalidInput
from comms.suppression import services as ledger
from comms.suppression.keys import address_key
from comms.suppression.models import Basis, ConsentEvent, Purpose, Source
from comms.suppression.services import Evidence, Principal
from comms.web.models import MemberMessage, MemberMessageKind, MemberMessageStatus
from comms.web.selectors import (
    ConfirmState,
    MemberLink,
    Scope,
    Status,
    confirm_state,
    preference_rows,
    unsubscribe_already_done,
)

PRINCIPAL = Principal(actor="self", recorded_by="member-pages")
# Queued messages older than this are no longer re-enqueued by the sweep.
SWEEP_HORIZON = dt.timedelta(hours=48)


def lock_contact(contact: Contact) -> None:
    list(Contact.objects.select_for_update().filter(pk=contact.pk).values_list("pk", flat=True))


@dataclass(frozen=True)
class UnsubscribeOutcome:
    scope: Scope
    event: ConsentEvent | None  # None: the person had already left this scope

    @property
    def changed(self) -> bool:
        return self.event is not None


def member_unsubscribe(
    *, link: MemberLink, scope: Scope, source: str, evidence: Evidence
) -> UnsubscribeOutcome:
    """Withdraw the link's purpose on its channel, every purpose on the channel, or object to
    all marketing. Records one ledger event, or none when the person has already left the scope."""
    with transaction.atomic():
        lock_contact(link.contact)
        if unsubscribe_already_done(link=link, scope=scope):
            return UnsubscribeOutcome(scope, None)
        if scope == Scope.ALL:
            event = ledger.objection_record(
                contact=link.contact, source=source, principal=PRINCIPAL, evidence=evidence
            )
        else:
            event = ledger.consent_withdraw(
                contact=link.contact,
                channel=link.channel,
                purpose=link.purpose if scope == Scope.PURPOSE else None,
                source=source,
                principal=PRINCIPAL,
                evidence=evidence,
            )
    return UnsubscribeOutcome(scope, event)


# --- the preference centre ----------------------------------------------------------------------


class Refusal(StrEnum):
    MINOR = "minor"
    OTHER = "other"


@dataclass
class PreferencesOutcome:
    withdrawn: list[Purpose] = field(default_factory=list)
    requested: list[Purpose] = field(default_factory=list)  # pending, confirmation link sent
    refused: list[tuple[Purpose, Refusal]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.withdrawn or self.requested)


def preferences_save(
    *, link: MemberLink, wanted: set[int], evidence: Evidence, lang: str
) -> PreferencesOutcome:
    """Make the person's ticks the new state: unticked purposes are withdrawn; newly ticked ones
    get a grant that waits for double opt-in, and one confirmation message goes to the address
    for all of them. Rows that already match the tick record nothing."""
    outcome = PreferencesOutcome()
    with transaction.atomic():
        lock_contact(link.contact)
        grants: list[ConsentEvent] = []
        for row in preference_rows(link=link):
            want = row.purpose.pk in wanted
            if row.status == Status.UNAVAILABLE or want == row.subscribed:
                continue
            if not want:
                ledger.consent_withdraw(
                    contact=link.contact,
                    channel=link.channel,
                    purpose=row.purpose,
                    source=Source.PREFERENCE_CENTRE,
                    principal=PRINCIPAL,
                    evidence=evidence,
                )
                outcome.withdrawn.append(row.purpose)
                continue
            try:
                with transaction.atomic():
                    grant = ledger.consent_grant(
                        contact=link.contact,
                        channel=link.channel,
                        purpose=row.purpose,
                        basis=Basis.CONSENT,
                        source=Source.PREFERENCE_CENTRE,  # always waits for double opt-in
                        principal=PRINCIPAL,
                        notice_version=row.notice.version if row.notice else None,
                        evidence=evidence,
                    )
            except DomainError as exc:
                minor = isinstance(exc, InvalidInput) and exc.field == "actor"
                outcome.refused.append((row.purpose, Refusal.MINOR if minor else Refusal.OTHER))
                continue
            grants.append(grant)
            outcome.requested.append(row.purpose)
        if grants:
            queue_member_message(
                kind=MemberMessageKind.CONFIRM,
                contact=link.contact,
                channel=link.channel,
                key=link.address_key,
                lang=lang,
                grant_ids=[g.pk for g in grants],
            )
    return outcome


def consent_renew(*, link: MemberLink, purpose_id: int, evidence: Evidence, lang: str) -> Purpose | None:
    """Renew a consent the preference centre offers to renew (an older notice, or near the end
    of its lifetime): a new grant to the current notice, waiting for double opt-in like any
    other; the old consent keeps working until then. Returns the purpose, or None when the row
    is not renewable (anymore)."""
    with transaction.atomic():
        lock_contact(link.contact)
        row = next((r for r in preference_rows(link=link) if r.purpose.pk == purpose_id), None)
        if row is None or not row.renewable or row.notice is None:
            return None
        grant = ledger.consent_grant(
            contact=link.contact,
            channel=link.channel,
            purpose=row.purpose,
            basis=Basis.CONSENT,
            source=Source.PREFERENCE_CENTRE,
            principal=PRINCIPAL,
            notice_version=row.notice.version,
            evidence=evidence,
        )
        queue_member_message(
            kind=MemberMessageKind.CONFIRM,
            contact=link.contact,
            channel=link.channel,
            key=link.address_key,
            lang=lang,
            grant_ids=[grant.pk],
        )
    return row.purpose


def consent_confirm_link(
    *, grant_ids: list[int], evidence: Evidence
) -> tuple[ConfirmState, list[ConsentEvent]]:
    """The person opened their confirmation link and pressed the button: confirm each grant it
    names that is still open. Returns the state before and the confirmations recorded (none
    when the link was used already, or every grant was withdrawn since)."""
    with transaction.atomic():
        state = confirm_state(grant_ids=grant_ids)
        lock_contact(state.contact)
        state = confirm_state(grant_ids=grant_ids)  # again, under the lock
        confirmations = []
        for grant in state.open:
            try:
                with transaction.atomic():
                    confirmations.append(
                        ledger.consent_confirm(
                            grant=grant,
                            source=Source.PREFERENCE_CENTRE,
                            principal=PRINCIPAL,
                            evidence=evidence,
                        )
                    )
            except Conflict:
                continue  # confirmed meanwhile
    return state, confirmations


# --- service messages ---------------------------------------------------------------------------


def queue_member_message(
    *, kind: str, contact: Contact, channel: str, key: str, lang: str, grant_ids: list[int] | None = None
) -> MemberMessage:
    message = MemberMessage.objects.create(
        kind=kind, contact=contact, channel=channel, address_key=key, lang=lang, grant_ids=grant_ids or []
    )
    transaction.on_commit(lambda: _enqueue(message.pk), robust=True)
    return message


def _enqueue(message_id: int) -> None:
    jobs.enqueue("send_member_message", message_id)


def member_messages_sweep(*, older_than: dt.timedelta | None = None) -> int:
    """Re-enqueue queued messages the broker may have lost."""
    now = timezone.now()
    cutoff = now - (older_than or dt.timedelta(seconds=settings.SEND_SWEEP_AFTER_SECONDS))
    ids = list(
        MemberMessage.objects.filter(
            status=MemberMessageStatus.QUEUED, created_at__lte=cutoff, created_at__gte=now - max(SWEEP_HORIZON, dt.timedelta(seconds=settings.SEND_RETRY_WINDOW))
        ).values_list("pk", flat=True)
    )
    for message_id in ids:
        _enqueue(message_id)
    return len(ids)


# --- the lost-link form -----------------------------------------------------------------------


class LostLinkResult(StrEnum):
    ACCEPTED = "accepted"  # the same answer whether or not the address is known
    INVALID = "invalid"
    LIMITED = "limited"  # too many requests from this client


def within_limit(key: str, limit: tuple[int, int]) -> bool:
    count, window = limit
    cache.add(key, 0, timeout=window)
    try:
        hits = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        hits = 1
    return hits <= count


def lost_link_request(*, raw: str, ip: str | None, lang: str) -> tuple[LostLinkResult, str]:
    """Send a fresh preferences link to every live contact with this email or mobile. Returns
    the result and the normalised address. Unknown addresses and addresses over their own limit
    get the same ACCEPTED as known ones, so the answer reveals nothing."""
    client = hashlib.sha256((ip or "unknown").encode()).hexdigest()[:32]
    if not within_limit(f"web:lost:ip:{client}", settings.LOST_LINK_LIMIT_PER_IP):
        return LostLinkResult.LIMITED, ""
    raw = raw.strip()[:254]
    channel = "email" if "@" in raw else "sms"
    try:
        address = normalise_address(channel, raw)
    except InvalidInput:
        return LostLinkResult.INVALID, ""
    key = address_key(channel, address)
    if not within_limit(f"web:lost:address:{key[:32]}", settings.LOST_LINK_LIMIT_PER_ADDRESS):
        return LostLinkResult.ACCEPTED, address
    lookup = {"email": address} if channel == "email" else {"mobile": address}
    with transaction.atomic():
        for contact in Contact.objects.filter(erased_at__isnull=True, **lookup).order_by("pk"):
            queue_member_message(kind=MemberMessageKind.LINK, contact=contact, channel=channel, key=key, lang=lang)
    return LostLinkResult.ACCEPTED, address


def rights_link_request(*, link: MemberLink, lang: str) -> None:
    """Queue a rights link to the link's address (at most a few an hour per address)."""
    if not within_limit(f"web:rights:address:{link.address_key[:32]}", settings.LOST_LINK_LIMIT_PER_ADDRESS):
        return
    with transaction.atomic():
        queue_member_message(
            kind=MemberMessageKind.RIGHTS,
            contact=link.contact,
            channel=link.channel,
            key=link.address_key,
            lang=lang,
        )
