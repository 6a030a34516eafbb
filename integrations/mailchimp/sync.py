"""The ledger -> Mailchimp direction: every email withdrawal, objection, complaint or erasure of
a contact whose brand has an audience becomes an ``AudienceUnsubscribe`` row and a high-priority
push that sets the member ``unsubscribed`` (never ``delete-permanent``), retried until it lands.
Also reconciliation, which repairs divergence in both directions."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from comms.contacts.models import Brand, Contact
from comms.core import jobs
from comms.suppression.gate import check_many
from comms.suppression.keys import address_key
from comms.suppression.locks import sender_lock
from comms.suppression.models import Action, ConsentEvent, Purpose, Source, Suppression, SuppressionChannel
from integrations.mailchimp.audiences import audience_for, enabled
from integrations.mailchimp.client import COMPLIANCE_STATE, FORGOTTEN, MailchimpClient, MailchimpError
from integrations.mailchimp.models import AudienceUnsubscribe, PropagationStatus, SyncState
from integrations.mailchimp.webhooks import mailchimp_change_record

logger = logging.getLogger(__name__)

_PUSHED_ACTIONS = frozenset({Action.WITHDRAW, Action.OBJECT, Action.ERASE, Action.SUPPRESS})
# Reconciliation re-reads this much before the last run, so a change at the boundary is not missed.
_OVERLAP = dt.timedelta(minutes=5)


# --- ledger -> Mailchimp ------------------------------------------------------------------------


def ledger_event_recorded(event: ConsentEvent) -> None:
    """Ledger listener, inside the appending transaction: queue the unsubscribe push (or the
    member upsert) that the event calls for. Reads the contact's address now, before an erasure
    blanks it."""
    if not enabled():
        return
    if _is_effective_grant(event):
        contact = event.contact
        if (
            contact is not None
            and contact.email
            and audience_for(contact.brand)
            and event.purpose is not None
        ):
            _enqueue_member_sync(contact.pk, event.purpose.pk)
        return
    if event.action not in _PUSHED_ACTIONS or event.channel not in ("", "email"):
        return
    if event.source == Source.MAILCHIMP_WEBHOOK:
        return  # it came from Mailchimp, which already has it
    if event.action == Action.WITHDRAW and event.purpose is not None and not event.purpose.marketing:
        return  # a service purpose: newsletters are unaffected
    contact = event.contact
    if contact is None or not contact.email:
        return  # an address-only suppression: reconciliation pushes it
    list_id = audience_for(contact.brand)
    if list_id is None:
        return
    unsubscribe_request(contact=contact, list_id=list_id, email=contact.email, event_id=event.pk)


def _is_effective_grant(event: ConsentEvent) -> bool:
    if event.channel != "email" or event.purpose is None or not event.purpose.marketing:
        return False
    return event.action == Action.CONFIRM or (event.action == Action.GRANT and not event.pending_confirmation)


def _enqueue_member_sync(contact_id: int, purpose_id: int) -> None:
    transaction.on_commit(lambda: jobs.enqueue("mailchimp_member_sync", contact_id, purpose_id), robust=True)


def member_sync(*, contact_id: int, purpose_id: int, client: MailchimpClient | None = None) -> str:
    """Upsert a contact whose email consent the gate allows as ``subscribed`` with merge fields.
    A member Mailchimp holds as unsubscribed (compliance state) is set ``pending`` instead:
    Mailchimp then asks the person to confirm (double opt-in). The gate and the PUT run under
    the senders' shared lock, so a withdrawal waits and its push lands after this upsert."""
    contact = Contact.objects.select_related("brand").filter(pk=contact_id).first()
    purpose = Purpose.objects.filter(pk=purpose_id).first()
    if contact is None or purpose is None or not contact.email:
        return "nothing to do"
    list_id = audience_for(contact.brand)
    if list_id is None:
        return "no audience"
    client = client or MailchimpClient.from_settings()
    merge_fields = {"FNAME": contact.first_name or "", "LNAME": contact.last_name or ""}
    with transaction.atomic():
        sender_lock([address_key("email", contact.email)])
        decision = check_many(contacts=[contact], channel="email", purpose=purpose)[contact.pk]
        if not decision.allowed:
            return f"not allowed: {decision.reason}"
        try:
            client.member_set(
                list_id,
                contact.email,
                status="subscribed",
                status_if_new="subscribed",
                merge_fields=merge_fields,
            )
        except MailchimpError as exc:
            if exc.title == COMPLIANCE_STATE:
                client.member_set(
                    list_id,
                    contact.email,
                    status="pending",
                    status_if_new="pending",
                    merge_fields=merge_fields,
                )
                return "pending"
            if exc.title == FORGOTTEN or exc.permanent:
                logger.warning("Mailchimp refused member %s: %s", contact.pk, exc.message)
                return f"refused: {exc.title or exc.status}"
            raise
    return "subscribed"


def unsubscribe_request(
    *, contact: Contact | None, list_id: str, email: str, event_id: int = 0
) -> AudienceUnsubscribe:
    """Record that ``email`` must be unsubscribed in ``list_id`` and push it after commit."""
    row, _ = AudienceUnsubscribe.objects.update_or_create(
        list_id=list_id,
        address_key=address_key("email", email),
        defaults={
            "contact": contact,
            "email": email,
            "event_id": event_id,
            "status": PropagationStatus.PENDING,
            "last_error": "",
            "requested_at": timezone.now(),
            "propagated_at": None,
        },
    )
    _enqueue_push(row.pk)
    return row


def _enqueue_push(row_id: int) -> None:
    transaction.on_commit(lambda: jobs.enqueue("mailchimp_unsubscribe", row_id), robust=True)


def unsubscribe_push(*, row_id: int, client: MailchimpClient | None = None) -> str:
    """Set the member ``unsubscribed`` (creating it so when unknown: Mailchimp then keeps its own
    suppression). Raises ``MailchimpError`` when it should be retried; records the rest."""
    row = AudienceUnsubscribe.objects.filter(pk=row_id).first()
    if row is None or row.status != PropagationStatus.PENDING:
        return "nothing to do"
    client = client or MailchimpClient.from_settings()
    still_this_request = AudienceUnsubscribe.objects.filter(pk=row.pk, requested_at=row.requested_at)
    outcome = PropagationStatus.DONE
    note = ""
    try:
        client.member_set(row.list_id, row.email, status="unsubscribed", status_if_new="unsubscribed")
    except MailchimpError as exc:
        if exc.title == FORGOTTEN:
            note = "permanently deleted in Mailchimp: it can never be mailed"
        elif exc.permanent:
            outcome, note = PropagationStatus.FAILED, exc.message
        else:
            AudienceUnsubscribe.objects.filter(pk=row.pk).update(
                attempts=row.attempts + 1, last_error=exc.message[:300]
            )
            raise
    if outcome == PropagationStatus.FAILED:
        logger.error("Mailchimp refused unsubscribe %s: %s", row.pk, note)
        still_this_request.update(status=outcome, attempts=row.attempts + 1, last_error=note[:300])
        return "failed"
    # The address is kept only until Mailchimp has it.
    still_this_request.update(
        status=outcome,
        attempts=row.attempts + 1,
        last_error=note[:300],
        email="",
        propagated_at=timezone.now(),
    )
    return "done"


def unsubscribe_sweep() -> int:
    """Re-enqueue pushes still pending a minute after they were asked for (a lost message)."""
    cutoff = timezone.now() - dt.timedelta(minutes=1)
    ids = list(
        AudienceUnsubscribe.objects.filter(
            status=PropagationStatus.PENDING, requested_at__lte=cutoff
        ).values_list("id", flat=True)[:5000]
    )
    with transaction.atomic():
        for row_id in ids:
            _enqueue_push(row_id)
    return len(ids)


# --- reconciliation -----------------------------------------------------------------------------


def _suppressed(key: str, brand: Brand) -> bool:
    return Suppression.objects.filter(
        Q(brand__isnull=True) | Q(brand=brand),
        address_key=key,
        channel__in=[SuppressionChannel.EMAIL, SuppressionChannel.ALL],
        lifted_at__isnull=True,
    ).exists()


def reconcile(*, client: MailchimpClient | None = None) -> dict[str, Any]:
    """For every configured audience: record in the ledger the members Mailchimp has
    unsubscribed or cleaned since the last run that the ledger lacks, and push ``unsubscribed``
    for every subscribed member whose address the ledger suppresses. Returns counts."""
    totals: Counter[str] = Counter()
    if not enabled():
        return {"audiences": 0}
    client = client or MailchimpClient.from_settings()
    for brand_key, list_id in settings.MAILCHIMP_AUDIENCES.items():
        brand = Brand.objects.filter(key=brand_key).first()
        if brand is None:
            continue
        totals["audiences"] += 1
        state, _ = SyncState.objects.get_or_create(list_id=list_id)
        started = timezone.now()
        since = (state.last_run_at - _OVERLAP).isoformat() if state.last_run_at else None
        counts: Counter[str] = Counter()
        for status in ("unsubscribed", "cleaned"):
            for member in client.members(list_id, status=status, since_last_changed=since):
                email = str(member.get("email_address") or "").strip().lower()
                if not email:
                    continue
                counts["pulled"] += 1
                if _suppressed(address_key("email", email), brand):
                    continue
                kind = "unsubscribe" if status == "unsubscribed" else "cleaned"
                with transaction.atomic():
                    mailchimp_change_record(
                        brand=brand,
                        kind=kind,
                        email=email,
                        reason="hard" if kind == "cleaned" else "manual",
                        occurred_at=None,
                        recorded_by="mailchimp-reconcile",
                    )
                counts["recorded"] += 1
        for member in client.members(list_id, status="subscribed"):
            email = str(member.get("email_address") or "").strip().lower()
            if not email or not _suppressed(address_key("email", email), brand):
                continue
            contact = Contact.objects.filter(brand=brand, email=email).first()
            with transaction.atomic():
                row = unsubscribe_request(contact=contact, list_id=list_id, email=email)
            counts["pushed"] += 1
            try:
                unsubscribe_push(row_id=row.pk, client=client)
            except MailchimpError as exc:
                counts["push_retrying"] += 1  # the queued push and the sweep carry on
                logger.warning("reconcile push for %s will be retried: %s", row.pk, exc.message)
        state.last_run_at = started
        state.last_result = dict(counts)
        state.save(update_fields=["last_run_at", "last_result"])
        totals.update(counts)
    return dict(totals)


def propagation_for_contact(*, contact_id: int) -> list[dict[str, Any]]:
    """The contact's unsubscribe pushes to Mailchimp, for exports: audience, status and times."""
    return [
        {
            "provider": "mailchimp",
            "list_id": row.list_id,
            "status": row.status,
            "requested_at": row.requested_at.isoformat(),
            "propagated_at": row.propagated_at.isoformat() if row.propagated_at else None,
            "attempts": row.attempts,
        }
        for row in AudienceUnsubscribe.objects.filter(contact_id=contact_id).order_by("requested_at")
    ]
