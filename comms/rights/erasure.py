"""Erasure (art. 17) in one transaction, across the rooms that hold the person: the contact's
data, the ledger (which records the erasure and keeps the suppressions) and the messages
(``comms.campaigns.erasure``). The providers are told after commit (``comms.rights.services``)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from comms.campaigns.erasure import deliveries_cancel_for_erasure, messages_redact
from comms.contacts.models import Contact
from comms.errors import Conflict, NotFound
from comms.suppression import services as ledger
from comms.suppression.models import ConsentEvent, ConsentEvidence
from comms.suppression.services import Principal


def contact_erase(*, contact: Contact, source: str, principal: Principal) -> Contact:
    """Erase the contact's personal data (art. 17) in one transaction: the ledger records the
    erasure and suppresses every address by its keyed hash first, then the data is blanked.

    Removed: name, birth date, addresses, external id, purchase date, guardian link, home
    centre, tags, visits, the IP and user agent of every evidence row of the person's events
    (and of events they made as a guardian), and on the messaging side the messages not yet sent
    (cancelled, reason ``erased``), the numbers and texts of SMS replies to them and their own
    inbound SMS. Kept: the row with its id, brand and kind, the ledger events (ids and keyed
    hashes only), the suppressions by keyed hash, and the deliveries (decision and status, no
    content: messages are rendered at hand-off and never stored)."""
    with transaction.atomic():
        locked = Contact.objects.select_for_update().filter(pk=contact.pk).first()
        if locked is None:
            raise NotFound(f"contact {contact.pk} not found")
        if locked.erased_at is not None:
            raise Conflict(f"contact {contact.pk} is already erased")
        mobile = locked.mobile
        # Delivery row locks before the address locks the ledger takes: the order the send path
        # takes them in, so an erasure and a send batch cannot deadlock.
        deliveries_cancel_for_erasure(contact=locked)
        event = ledger.erasure_record(contact=locked, source=source, principal=principal)
        locked.first_name = ""
        locked.last_name = ""
        locked.birth_date = None
        locked.email = None
        locked.mobile = None
        locked.external_id = None
        locked.purchase_at = None
        locked.guardian = None
        locked.home_centre = None
        locked.erased_at = event.recorded_at
        locked.save()
        locked.tags.clear()
        locked.visits.all().delete()
        messages_redact(mobile=mobile)
        own_events = ConsentEvent.objects.filter(Q(contact=locked) | Q(actor_contact=locked)).values_list(
            "pk", flat=True
        )
        ledger.evidence_redact(events=own_events, fields=("ip", "user_agent"))
        # Uploaded proof files are personal data too; the ledger keeps only their sealed hashes.
        ledger.proofs_delete(
            sha256s=ConsentEvidence.objects.filter(event_id__in=own_events).values_list(
                "proof_sha256", flat=True
            )
        )
    return locked
