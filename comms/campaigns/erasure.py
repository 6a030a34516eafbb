"""The messaging side of an erasure (called by ``comms.rights.erasure.contact_erase``, in its
transaction): stop what has not been sent, and remove the person's number and words from the
SMS replies and inbound messages we keep. Deliveries themselves hold no personal data (the
address only as a keyed hash; texts are rendered at hand-off and never stored), so they stay as
the record of every decision."""

from __future__ import annotations

import contextlib

import phonenumbers

from comms.campaigns.models import CallbackReceipt, Delivery, DeliveryStatus, Reply, ReplyStatus
from comms.contacts.models import Contact

ERASED = "erased"
# What an inbound SMS receipt keeps after an erasure: enough to deduplicate and to count.
_INBOUND_KEPT = ("provider_id", "to", "received_at")


def deliveries_cancel_for_erasure(*, contact: Contact) -> int:
    """Cancel the contact's messages not yet handed over (any campaign, any follow-up)."""
    return Delivery.objects.filter(
        contact=contact, status__in=[DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED]
    ).update(status=DeliveryStatus.CANCELLED, reason=ERASED)


def _spellings(mobile: str) -> list[str]:
    """The forms an E.164 number may take in a provider's ``from`` field."""
    digits = mobile.lstrip("+")
    forms = {mobile, digits, f"00{digits}"}
    with contextlib.suppress(phonenumbers.NumberParseException):
        forms.add(str(phonenumbers.parse(mobile).national_number))
    return sorted(forms)


def messages_redact(*, mobile: str | None) -> dict[str, int]:
    """Blank the number and text of SMS replies to ``mobile`` (a queued one is not sent) and
    the sender and text of inbound SMS from it. Returns how many of each changed."""
    if not mobile:
        return {"replies": 0, "inbound": 0}
    replies = Reply.objects.filter(to=mobile)
    replies.filter(status=ReplyStatus.QUEUED).update(status=ReplyStatus.FAILED, last_error="recipient erased")
    reply_count = replies.update(to="", text="")
    inbound = 0
    for receipt in CallbackReceipt.objects.filter(
        kind="inbound", payload__from__in=_spellings(mobile)
    ).select_for_update():
        payload = receipt.payload if isinstance(receipt.payload, dict) else {}
        receipt.payload = {**{k: payload[k] for k in _INBOUND_KEPT if k in payload}, "redacted": ERASED}
        receipt.save(update_fields=["payload"])
        inbound += 1
    return {"replies": reply_count, "inbound": inbound}
