"""The data-protection rights (GDPR arts. 15–18, 20) and retention. Every action writes its row
in the rights audit log in the same transaction as the action; a refused attempt is logged by
``audit_refusal``.

Decisions:
- Rectification (art. 16) is ``PATCH /contacts/{id}``, open to staff, system and dpo keys since
  front desks correct data every day. Each change of personal data (name, birth date, email,
  mobile, guardian) is recorded twice: in the ledger, one ``rectify`` event per field (the
  field's name, and for an address the new address's keyed hash, never a value), so the chain
  proves which address later events are about; and in the rights audit log (who, when, which
  fields). Other fields (kind, tags, centre, purchase date) are ordinary updates.
- Erasure is one transaction (``comms.rights.erasure.contact_erase``); a second
  erasure is a 409 and changes nothing. Providers are told after commit by an actor, retried.
- Export of an erased contact works and shows what remains.
- Restriction and its lift are ledger events (``restrict`` / ``lift_restriction``); the gate
  denies every message while a restriction stands.

Longer than 400 lines: each right (access, rectification, erasure, restriction, retention,
self-service) is a short function over the same audit log; erasure's one transaction is
``comms.rights.erasure``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, OuterRef, Q, Subquery
from django.utils import timezone

from comms.contacts.models import Contact, ContactKind
from comms.contacts.selectors import contact_get
from comms.contacts.services import ContactInput, contact_update
from comms.core import jobs
from comms.errors import Conflict, DomainError, NotFound
from comms.rights import selectors
from comms.rights.erasure import contact_erase
from comms.rights.models import (
    AuditEntry,
    RightsAction,
    RightsRequest,
    RightsRequestKind,
    RightsRequestStatus,
)
from comms.rights.providers import Propagation, erasure_plan, erasure_propagate
from comms.suppression import services as ledger
from comms.suppression.gate import Reason, check_many
from comms.suppression.models import Action, ConsentEvent, ConsentEvidence, Purpose, Source, Suppression
from comms.suppression.services import RECTIFIABLE_FIELDS, Principal

logger = logging.getLogger(__name__)
RETENTION_ACTOR = "system:retention"


def audit_record(
    *,
    actor: str,
    action: str,
    contact_id: int | None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        at=timezone.now(),
        actor=actor[:120],
        action=action,
        contact_id=contact_id,
        outcome=outcome[:300],
        detail=detail or {},
    )


def audit_refusal(*, actor: str, action: str, contact_id: int | None, error: DomainError) -> AuditEntry:
    """Log a refused rights call (wrong role, unknown id, already erased…) in its own write:
    the action's transaction has rolled back, the attempt still counts."""
    return audit_record(
        actor=actor,
        action=action,
        contact_id=contact_id,
        outcome=f"refused {error.status_code}: {error.message}",
    )


def _principal(actor: str) -> Principal:
    kind = "system" if actor.startswith("system:") else "staff"
    return Principal(actor=kind, recorded_by=actor)


# --- access (arts. 15, 20) ------------------------------------------------------------------


def contact_export(*, contact_id: int, actor: str) -> dict[str, Any]:
    """Everything held about the person as one document; the call is logged."""
    contact = contact_get(contact_id=contact_id)
    with transaction.atomic():
        document = selectors.contact_export(contact=contact)
        entry = audit_record(
            actor=actor,
            action=RightsAction.EXPORT,
            contact_id=contact.pk,
            detail={
                "events": len(document["consent_events"]),
                "messages": len(document["messages"]),
                "erased": contact.erased_at is not None,
            },
        )
        # The document lists the rights log too: include this very export.
        document["rights_log"].append(
            {"at": entry.at, "actor": entry.actor, "action": entry.action, "outcome": entry.outcome}
        )
    return document


def contact_log(*, contact_id: int, actor: str) -> dict[str, Any]:
    contact = contact_get(contact_id=contact_id)
    with transaction.atomic():
        log = selectors.contact_log(contact=contact)
        audit_record(
            actor=actor,
            action=RightsAction.LOG,
            contact_id=contact.pk,
            detail={"messages": len(log["messages"])},
        )
    return log


# --- rectification (art. 16) ----------------------------------------------------------------


def _personal(contact: Contact) -> dict[str, Any]:
    return {
        name: getattr(contact, "guardian_id" if name == "guardian" else name) for name in RECTIFIABLE_FIELDS
    }


def contact_rectify(*, contact: Contact, data: ContactInput, actor: str) -> Contact:
    """Update the contact; a change of personal data is a rectification, recorded in the ledger
    (one ``rectify`` event per field) and in the rights audit log, in the same transaction."""
    with transaction.atomic():
        before = _personal(Contact.objects.select_for_update().get(pk=contact.pk))
        updated = contact_update(contact=contact, data=data)
        after = _personal(updated)
        changed = [name for name in RECTIFIABLE_FIELDS if before[name] != after[name]]
        if changed:
            ledger.rectification_record(
                contact=updated, fields=changed, source=Source.API, principal=_principal(actor)
            )
            audit_record(
                actor=actor, action=RightsAction.RECTIFY, contact_id=contact.pk, detail={"fields": changed}
            )
    return updated


# --- erasure (art. 17) ----------------------------------------------------------------------


@dataclass
class Erasure:
    contact: Contact
    event: ConsentEvent
    suppressed_keys: int
    propagation: list[Propagation]


def contact_erase_request(*, contact_id: int, actor: str, source: str = Source.RIGHTS_REQUEST) -> Erasure:
    """Erase the person (one transaction, with its audit row); after commit an actor tells the
    providers (retried). A second erasure raises ``Conflict`` and changes nothing."""
    contact = contact_get(contact_id=contact_id)
    with transaction.atomic():
        erased = contact_erase(contact=contact, source=source, principal=_principal(actor))
        event = ConsentEvent.objects.get(contact=erased, action=Action.ERASE)
        suppressed = Suppression.objects.filter(source_event=event).count()
        audit_record(
            actor=actor,
            action=RightsAction.ERASE,
            contact_id=contact.pk,
            detail={"event_id": event.pk, "suppressed_addresses": suppressed, "source": source},
        )
        transaction.on_commit(lambda: _enqueue_propagation(contact.pk), robust=True)
    return Erasure(contact=erased, event=event, suppressed_keys=suppressed, propagation=erasure_plan())


def _enqueue_propagation(contact_id: int) -> None:
    jobs.enqueue("propagate_erasure", contact_id)


def erasure_propagation_run(*, contact_id: int) -> list[Propagation]:
    """Tell each provider (the actor's body). Logged with each provider's outcome."""
    results = erasure_propagate(contact_id=contact_id)
    audit_record(
        actor="system:erasure-propagation",
        action=RightsAction.ERASE_PROPAGATION,
        contact_id=contact_id,
        detail={result.provider: result.status for result in results},
    )
    return results


# --- restriction (art. 18) ------------------------------------------------------------------


def contact_restrict(*, contact_id: int, actor: str) -> ConsentEvent:
    contact = contact_get(contact_id=contact_id)
    with transaction.atomic():
        event = ledger.restriction_set(
            contact=contact, source=Source.RIGHTS_REQUEST, principal=_principal(actor)
        )
        audit_record(
            actor=actor, action=RightsAction.RESTRICT, contact_id=contact.pk, detail={"event_id": event.pk}
        )
    return event


def contact_restriction_lift(*, contact_id: int, actor: str) -> ConsentEvent:
    contact = contact_get(contact_id=contact_id)
    with transaction.atomic():
        event = ledger.restriction_lift(
            contact=contact, source=Source.RIGHTS_REQUEST, principal=_principal(actor)
        )
        audit_record(
            actor=actor,
            action=RightsAction.LIFT_RESTRICTION,
            contact_id=contact.pk,
            detail={"event_id": event.pk},
        )
    return event


# --- retention ------------------------------------------------------------------------------


@dataclass
class RetentionReport:
    ran_at: dt.datetime
    dry_run: bool
    guest_cutoff: dt.datetime
    evidence_cutoff: dt.datetime
    guests_erased: list[int] = field(default_factory=list)
    leads_cutoff: dt.datetime | None = None
    leads_erased: list[int] = field(default_factory=list)
    evidence_ips_dropped: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would erase" if self.dry_run else "erased"
        drop = "would drop" if self.dry_run else "dropped"
        lines = [
            f"{verb} {len(self.guests_erased)} guest(s) without conversion, inactive since before "
            f"{self.guest_cutoff:%Y-%m-%d}"
            + (f": {', '.join(map(str, self.guests_erased))}" if self.guests_erased else ""),
            f"{drop} the IP address of {self.evidence_ips_dropped} evidence row(s) recorded before "
            f"{self.evidence_cutoff:%Y-%m-%d}",
        ]
        if self.leads_cutoff is not None:
            lines.append(
                f"{verb} {len(self.leads_erased)} lead(s) with no consent left, last changed before "
                f"{self.leads_cutoff:%Y-%m-%d}"
                + (f": {', '.join(map(str, self.leads_erased))}" if self.leads_erased else "")
            )
        lines += [f"error: {error}" for error in self.errors]
        return "\n".join(lines)


def retention_candidates(*, cutoff: dt.datetime) -> list[int]:
    """Guests (never converted) with nothing since ``cutoff``: created, last visit and last
    consent given all before it. A newer grant or visit means the relationship is alive."""
    last_grant = (
        ConsentEvent.objects.filter(contact=OuterRef("pk"), action__in=[Action.GRANT, Action.CONFIRM])
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    guests = (
        Contact.objects.filter(kind=ContactKind.GUEST, erased_at__isnull=True, created_at__lt=cutoff)
        .annotate(last_visit=Max("visits__occurred_at"), last_grant=Subquery(last_grant))
        .filter(Q(last_visit__isnull=True) | Q(last_visit__lt=cutoff))
        .filter(Q(last_grant__isnull=True) | Q(last_grant__lt=cutoff))
    )
    return list(guests.order_by("id").values_list("id", flat=True))


# A lead whose every decision is one of these has no consent left: withdrawn, objected, never
# confirmed. (An expired or stale consent is not a withdrawal: marketers may still refresh it.)
_NO_CONSENT_LEFT = (Reason.WITHDRAWN, Reason.OBJECTION, Reason.NO_CONSENT, Reason.AWAITING_CONFIRMATION)


def withdrawn_lead_candidates(*, cutoff: dt.datetime) -> list[int]:
    """Leads (consent was the only basis: not members, not guests) that gave consent once, have
    none left on any purpose or channel, and whose last ledger event is older than ``cutoff``.
    A sign-up never confirmed counts too: we hold the address only to ask."""
    last_event = (
        ConsentEvent.objects.filter(contact=OuterRef("pk")).order_by("-recorded_at").values("recorded_at")[:1]
    )
    leads = list(
        Contact.objects.filter(kind=ContactKind.LEAD, erased_at__isnull=True, created_at__lt=cutoff)
        .filter(pk__in=ConsentEvent.objects.filter(action=Action.GRANT).values("contact_id"))
        .annotate(last_event=Subquery(last_event))
        .filter(last_event__lt=cutoff)
        .select_related("brand")
        .order_by("id")
    )
    remaining = {lead.pk for lead in leads}
    purposes = Purpose.objects.filter(brand_id__in={lead.brand_id for lead in leads})
    for purpose in purposes:
        for channel in ("email", "sms"):
            if not purpose.allows_channel(channel):
                continue
            group = [lead for lead in leads if lead.pk in remaining and lead.brand_id == purpose.brand_id]
            for contact_id, decision in check_many(contacts=group, channel=channel, purpose=purpose).items():
                denied_for_good = decision.reason in _NO_CONSENT_LEFT or decision.reason.startswith(
                    f"{Reason.SUPPRESSED}:"
                )
                if decision.reason != Reason.NO_ADDRESS and not denied_for_good:
                    remaining.discard(contact_id)
    return sorted(remaining)


def retention_run(*, dry_run: bool = False, now: dt.datetime | None = None) -> RetentionReport:
    """Erase guests past ``COMMS_GUEST_RETENTION_DAYS`` (each in its own transaction, keeping
    their suppressions) and drop evidence IPs older than ``COMMS_EVIDENCE_IP_RETENTION_DAYS``.
    Reports what it did (or, with ``dry_run``, what it would do); the run is logged."""
    now = now or timezone.now()
    report = RetentionReport(
        ran_at=now,
        dry_run=dry_run,
        guest_cutoff=now - dt.timedelta(days=settings.GUEST_RETENTION_DAYS),
        evidence_cutoff=now - dt.timedelta(days=settings.EVIDENCE_IP_RETENTION_DAYS),
    )
    # IPs first, so the report counts every old row (an erasure below also blanks its own).
    stale = ConsentEvidence.objects.filter(ip__isnull=False, event__recorded_at__lt=report.evidence_cutoff)
    if dry_run:
        report.evidence_ips_dropped = stale.count()
    else:
        while ids := list(stale.values_list("event_id", flat=True)[:1000]):
            with transaction.atomic():
                report.evidence_ips_dropped += ledger.evidence_redact(events=ids, fields=("ip",))
    report.leads_cutoff = now - dt.timedelta(days=settings.LEAD_WITHDRAWN_GRACE_DAYS)
    for contact_id in withdrawn_lead_candidates(cutoff=report.leads_cutoff):
        if dry_run:
            report.leads_erased.append(contact_id)
            continue
        try:
            contact_erase_request(contact_id=contact_id, actor=RETENTION_ACTOR, source=Source.RETENTION)
        except Conflict:
            continue
        except DomainError as exc:
            report.errors.append(f"contact {contact_id}: {exc.message}")
            continue
        report.leads_erased.append(contact_id)
    for contact_id in retention_candidates(cutoff=report.guest_cutoff):
        if dry_run:
            report.guests_erased.append(contact_id)
            continue
        try:
            contact_erase_request(contact_id=contact_id, actor=RETENTION_ACTOR, source=Source.RETENTION)
        except Conflict:
            continue  # erased meanwhile by a rights request
        except DomainError as exc:
            report.errors.append(f"contact {contact_id}: {exc.message}")
            continue
        report.guests_erased.append(contact_id)

    if not dry_run:
        audit_record(
            actor=RETENTION_ACTOR,
            action=RightsAction.RETENTION,
            contact_id=None,
            detail={
                "guests_erased": len(report.guests_erased),
                "leads_erased": len(report.leads_erased),
                "evidence_ips_dropped": report.evidence_ips_dropped,
                "errors": len(report.errors),
            },
        )
    logger.info("retention: %s", report.summary().replace("\n", "; "))
    return report


# --- self-service (the preference centre) ---------------------------------------------------
# The person proved they hold the address by a rights link (comms.web); these act on that proof.
SELF_SERVICE_ACTOR = "self:preference-centre"


def one_month_after(moment: dt.datetime) -> dt.datetime:
    """The same day next month (art. 12(3)), or that month's last day when it has no such day."""
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    last_day = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def selfservice_export(*, contact_id: int) -> dict[str, Any]:
    """The person's own export, downloaded after proving the address (logged like any export)."""
    return contact_export(contact_id=contact_id, actor=SELF_SERVICE_ACTOR)


@dataclass
class SelfServiceErasure:
    erased: bool  # done at once (a lead: consent was the only basis)
    request: RightsRequest | None  # or queued for the DPO, with its due date


def selfservice_erasure(*, contact_id: int, channel: str) -> SelfServiceErasure:
    """A lead, who only ever gave consent, is erased at once (keeping the suppression). A member
    or guest has a contract or a visit behind their data, so the request goes to the DPO queue,
    due in one month; asking again while one is open returns the open one."""
    contact = contact_get(contact_id=contact_id)
    if contact.kind == ContactKind.LEAD:
        contact_erase_request(contact_id=contact.pk, actor=SELF_SERVICE_ACTOR)
        return SelfServiceErasure(erased=True, request=None)
    with transaction.atomic():
        Contact.objects.select_for_update().filter(pk=contact.pk).exists()
        existing = RightsRequest.objects.filter(
            contact=contact, kind=RightsRequestKind.ERASURE, status=RightsRequestStatus.OPEN
        ).first()
        if existing is not None:
            return SelfServiceErasure(erased=False, request=existing)
        now = timezone.now()
        request = RightsRequest.objects.create(
            contact=contact,
            kind=RightsRequestKind.ERASURE,
            channel=channel,
            received_at=now,
            due_at=one_month_after(now),
        )
        audit_record(
            actor=SELF_SERVICE_ACTOR,
            action=RightsAction.ERASE_REQUEST,
            contact_id=contact.pk,
            outcome="queued for review",
            detail={"request_id": request.pk, "due_at": request.due_at.isoformat()},
        )
    return SelfServiceErasure(erased=False, request=request)


def rights_request_close(*, request_id: int, actor: str, erase: bool, note: str = "") -> RightsRequest:
    """The DPO's decision on a queued request: erase the person (done) or refuse, with a note
    (art. 12(4): the person is told why). A closed request cannot be closed again."""
    with transaction.atomic():
        request = RightsRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None:
            raise NotFound(f"rights request {request_id} not found")
        if request.status != RightsRequestStatus.OPEN:
            raise Conflict(f"rights request {request_id} is already {request.status}")
        if erase:
            # Erased meanwhile (retention, another request): the request is done all the same.
            with contextlib.suppress(Conflict):
                contact_erase_request(contact_id=request.contact_id, actor=actor)
        request.status = RightsRequestStatus.DONE if erase else RightsRequestStatus.REFUSED
        request.closed_at = timezone.now()
        request.closed_by = actor[:120]
        request.note = note[:500]
        request.save(update_fields=["status", "closed_at", "closed_by", "note"])
    return request
