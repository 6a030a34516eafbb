"""Mailchimp -> ledger: audience webhooks stored once as ``CallbackReceipt`` (provider
``mailchimp``) and processed by an actor into ledger events with source ``mailchimp_webhook``.

``unsubscribe`` (either action) withdraws the contact's email consents (or suppresses the bare
address); ``reason=abuse`` is a spam complaint: a ``complaint`` suppression of the address for
every brand. ``cleaned`` with ``hard`` is a hard bounce. ``upemail`` and ``profile`` are the
person's own rectification in Mailchimp's profile form: the contact's email or name is updated and
the ledger records a ``rectify`` event per changed field (names only, never values). They carry
no consent, so they lift nothing; the contact's consents follow the contact to its new address,
and every suppression of the old address stays.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from comms.campaigns.models import CallbackReceipt
from comms.contacts.addresses import normalise_email
from comms.contacts.models import Brand, Contact
from comms.core import jobs
from comms.errors import InvalidInput
from comms.suppression import services as ledger
from comms.suppression.models import Source, SuppressionChannel, SuppressionReason
from comms.suppression.services import Principal
from integrations.mailchimp.audiences import brand_for

logger = logging.getLogger(__name__)

PROVIDER = "mailchimp"
HANDLED = frozenset({"unsubscribe", "cleaned", "upemail", "profile"})


def webhook_parse(form: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    """(kind, dedupe key, payload) of a form-encoded webhook; ``InvalidInput`` when malformed,
    kind ``ignored`` for events we did not subscribe to."""
    kind = form.get("type", "")
    if kind not in HANDLED:
        return "ignored", "", form
    fired_at = form.get("fired_at", "")
    list_id = form.get("data[list_id]", "")
    email = form.get("data[old_email]") if kind == "upemail" else form.get("data[email]")
    if not fired_at:
        raise InvalidInput("fired_at", "is required")
    if not list_id:
        raise InvalidInput("data[list_id]", "is required")
    if not email or "@" not in email:
        raise InvalidInput("data[email]", "is required")
    if brand_for(list_id) is None:
        raise InvalidInput("data[list_id]", "is not an audience of this service")
    # Mailchimp retries a delivery for 75 minutes; the same event keeps its fired_at.
    extra = form.get("data[new_email]", "") if kind == "upemail" else form.get("data[action]", "")
    dedupe_key = "|".join([fired_at, list_id, email.strip().lower(), extra.lower()])[:200]
    return kind, dedupe_key, form


def webhook_receive(*, kind: str, dedupe_key: str, payload: dict[str, str]) -> bool:
    """Store one webhook and enqueue its processing after commit. False for a repeat."""
    try:
        with transaction.atomic():
            receipt = CallbackReceipt.objects.create(
                provider=PROVIDER, kind=kind, dedupe_key=dedupe_key, payload=payload
            )
            transaction.on_commit(lambda: _enqueue(receipt.pk), robust=True)
    except IntegrityError:
        return False
    except DataError:
        raise InvalidInput("body", "contains characters that cannot be stored") from None
    return True


def _enqueue(receipt_id: int) -> None:
    jobs.enqueue("mailchimp_webhook", receipt_id)


def webhook_process(*, receipt_id: int) -> str:
    """Apply one stored webhook to the ledger, once."""
    with transaction.atomic():
        receipt = CallbackReceipt.objects.select_for_update().filter(pk=receipt_id, provider=PROVIDER).first()
        if receipt is None or receipt.processed_at is not None:
            return "nothing to do"
        payload: dict[str, Any] = receipt.payload
        brand = brand_for(str(payload.get("data[list_id]", "")))
        if brand is None:
            outcome = "unknown audience"
        elif receipt.kind in ("upemail", "profile"):
            outcome = mailchimp_profile_record(brand=brand, kind=receipt.kind, payload=payload)
        else:
            reason = str(payload.get("data[reason]", ""))
            outcome = mailchimp_change_record(
                brand=brand,
                kind=receipt.kind,
                email=str(payload.get("data[email]", "")),
                reason=reason,
                occurred_at=_fired_at(str(payload.get("fired_at", ""))),
                recorded_by="mailchimp-webhook",
            )
        receipt.processed_at = timezone.now()
        receipt.outcome = outcome[:200]
        receipt.save(update_fields=["processed_at", "outcome"])
    return outcome


def mailchimp_change_record(
    *, brand: Brand, kind: str, email: str, reason: str, occurred_at: dt.datetime | None, recorded_by: str
) -> str:
    """Record in the ledger what Mailchimp reports about ``email`` (in the caller's transaction)."""
    email = email.strip().lower()
    contacts = list(Contact.objects.filter(brand=brand, email=email, erased_at__isnull=True))
    person = Principal(actor="self", recorded_by=recorded_by)
    system = Principal(actor="system", recorded_by=recorded_by)
    source = Source.MAILCHIMP_WEBHOOK
    if reason == "abuse":
        # A spam complaint: no more email to this address, from any brand.
        for contact in contacts:
            ledger.consent_withdraw(
                contact=contact,
                channel="email",
                purpose=None,
                source=source,
                principal=person,
                occurred_at=occurred_at,
                suppression_reason=SuppressionReason.COMPLAINT,
            )
        ledger.suppression_add(
            channel=SuppressionChannel.EMAIL,
            address=email,
            reason=SuppressionReason.COMPLAINT,
            source=source,
            principal=person,
            contact=contacts[0] if contacts else None,
            occurred_at=occurred_at,
        )
        return f"complaint ({len(contacts)} contact(s))"
    if kind == "cleaned":
        ledger.suppression_add(
            channel=SuppressionChannel.EMAIL,
            address=email,
            reason=SuppressionReason.HARD_BOUNCE,
            source=source,
            principal=system,
            contact=contacts[0] if contacts else None,
            occurred_at=occurred_at,
        )
        return "hard bounce"
    for contact in contacts:
        ledger.consent_withdraw(
            contact=contact,
            channel="email",
            purpose=None,
            source=source,
            principal=person,
            occurred_at=occurred_at,
        )
    if not contacts:
        ledger.suppression_add(
            channel=SuppressionChannel.EMAIL,
            address=email,
            reason=SuppressionReason.WITHDRAWN,
            source=source,
            principal=person,
            brand=brand,
            occurred_at=occurred_at,
        )
    return f"withdrawn ({len(contacts)} contact(s))"


def _fired_at(value: str) -> dt.datetime | None:
    """``YYYY-MM-DD HH:MM:SS``, zone undocumented: read as UTC, never later than now."""
    try:
        parsed = dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return min(parsed, timezone.now())


def webhooks_sweep() -> int:
    """Re-enqueue receipts left unprocessed for over a minute (the broker lost the message)."""
    cutoff = timezone.now() - dt.timedelta(minutes=1)
    ids = list(
        CallbackReceipt.objects.filter(provider=PROVIDER, processed_at__isnull=True, received_at__lte=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:1000]
    )
    for receipt_id in ids:
        _enqueue(receipt_id)
    return len(ids)


def mailchimp_profile_record(*, brand: Brand, kind: str, payload: dict[str, Any]) -> str:
    """Apply a person's own profile change in Mailchimp (``upemail``, ``profile``) to the contact
    and record it as a rectification (in the caller's transaction)."""
    principal = Principal(actor="self", recorded_by="mailchimp-webhook")
    if kind == "upemail":
        old = str(payload.get("data[old_email]", "")).strip().lower()
        try:
            new = normalise_email(str(payload.get("data[new_email]", "")), field="data[new_email]")
        except InvalidInput:
            return "invalid new email"
        contacts = list(
            Contact.objects.select_for_update().filter(brand=brand, email=old, erased_at__isnull=True)
        )
        for contact in contacts:
            contact.email = new
            contact.save(update_fields=["email", "updated_at"])
            ledger.rectification_record(
                contact=contact, fields=["email"], source=Source.MAILCHIMP_WEBHOOK, principal=principal
            )
        return f"email rectified ({len(contacts)} contact(s))"
    email = str(payload.get("data[email]", "")).strip().lower()
    names = {
        "first_name": str(payload.get("data[merges][FNAME]", "")).strip()[:100],
        "last_name": str(payload.get("data[merges][LNAME]", "")).strip()[:100],
    }
    changed_total = 0
    for contact in Contact.objects.select_for_update().filter(
        brand=brand, email=email, erased_at__isnull=True
    ):
        changed = [f for f, value in names.items() if value and getattr(contact, f) != value]
        if not changed:
            continue
        for field in changed:
            setattr(contact, field, names[field])
        contact.save(update_fields=[*changed, "updated_at"])
        ledger.rectification_record(
            contact=contact, fields=changed, source=Source.MAILCHIMP_WEBHOOK, principal=principal
        )
        changed_total += 1
    return f"profile rectified ({changed_total} contact(s))" if changed_total else "no change"
