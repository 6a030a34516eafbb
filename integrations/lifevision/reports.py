"""What a LifeVision delivery report means for its delivery and for the ledger.

A report moves its delivery forward only (a late ``sent`` after ``delivered`` changes nothing),
and counts delivered segments. A ``complaint`` suppresses the channel the delivery went out on
(email, in practice) for the campaign's brand; ``blocked_recipient`` and ``hard_bounce`` suppress
the address for every brand, through the ledger's services.
"""

from __future__ import annotations

import logging
import uuid

from django.utils import timezone

from comms.campaigns.finish import campaign_finish_if_done
from comms.campaigns.models import CallbackReceipt, Delivery, DeliveryStatus
from comms.contacts.addresses import normalise_address
from comms.contacts.models import Brand
from comms.errors import InvalidInput
from comms.suppression import services as ledger
from comms.suppression.keys import address_key
from comms.suppression.models import (
    Source,
    Suppression,
    SuppressionReason,
)
from integrations.lifevision.callbacks import (
    REPORT,
    Report,
    receipt_process,
    report_parse,
)

logger = logging.getLogger(__name__)

FAILURE_STATUSES = frozenset({"failed", "expired", "rejected"})
BOUNCE_CODES = frozenset({"hard_bounce", "complaint"})

# How far a delivery has come: a report never moves it back (a late "sent" after "delivered").
_RANK: dict[str, int] = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.DEFERRED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.FAILED: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.BOUNCED: 4,
}


def delivery_report_process(*, receipt_id: int) -> str:
    """Apply one delivery report to its delivery (and the ledger); returns the outcome."""
    finished: list[int] = []

    def handle(receipt: CallbackReceipt) -> str:
        try:
            report = report_parse(receipt.payload)
        except InvalidInput as exc:
            return f"invalid payload: {exc.field}"
        delivery = _find_delivery(report)
        if delivery is None:
            return "unknown delivery"
        was_pending = delivery.status in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)
        outcome = _apply_report(delivery, report)
        outcome += _report_ledger(delivery, report)
        if was_pending and delivery.status not in (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED):
            finished.append(delivery.campaign_id)
        return outcome

    outcome = receipt_process(receipt_id, REPORT, handle)
    if finished:
        campaign_finish_if_done(campaign_id=finished[0])
    return outcome


def _find_delivery(report: Report) -> Delivery | None:
    deliveries = Delivery.objects.select_for_update(of=("self",)).select_related(
        "contact", "campaign", "campaign__brand"
    )
    delivery = deliveries.exclude(provider_id="").filter(provider_id=report.provider_id).first()
    if delivery is None and report.external_id:
        # The send transaction may not have committed the provider id yet: our own id is there.
        try:
            external_id = uuid.UUID(report.external_id)
        except ValueError:
            return None
        delivery = deliveries.filter(external_id=external_id).first()
    return delivery


def _apply_report(delivery: Delivery, report: Report) -> str:
    now = timezone.now()
    at = min(report.occurred_at or now, now)
    old = delivery.status
    if old not in _RANK:  # denied or cancelled: we never handed it over, so keep our record
        logger.warning("delivery %s is %s but got a %s report", delivery.pk, old, report.status)
        return f"report {report.status} for a {old} delivery: status kept"
    fields = {"status"}
    if report.status in ("queued", "sent"):
        target = DeliveryStatus.SENT
        outcome = f"{report.status}"
    elif report.status == "delivered":
        delivery.segments = report.segments
        delivery.segments_delivered += 1
        fields |= {"segments", "segments_delivered"}
        done = delivery.segments_delivered >= delivery.segments
        target = DeliveryStatus.DELIVERED if done else DeliveryStatus.SENT
        outcome = f"delivered {delivery.segments_delivered}/{delivery.segments}"
    else:
        bounced = report.error_code in BOUNCE_CODES
        target = DeliveryStatus.BOUNCED if bounced else DeliveryStatus.FAILED
        outcome = f"{report.status}: {report.error_code or 'no error code'}"
    if _RANK[target] > _RANK[old]:
        delivery.status = target
        if target in (DeliveryStatus.FAILED, DeliveryStatus.BOUNCED):
            delivery.last_error = (report.error_code or report.status)[:300]
            fields.add("last_error")
        if delivery.sent_at is None:
            delivery.sent_at = at
            fields.add("sent_at")
        if target == DeliveryStatus.DELIVERED:
            delivery.delivered_at = at
            fields.add("delivered_at")
    elif target != old:
        outcome += f"; status kept {old}"
    if not delivery.provider_id:
        delivery.provider_id = report.provider_id
        fields.add("provider_id")
    delivery.save(update_fields=sorted(fields))
    return outcome


def _report_ledger(delivery: Delivery, report: Report) -> str:
    """An operator block, a hard bounce or a complaint becomes a ledger event and a suppression."""
    code = report.error_code
    channel = delivery.channel
    brand: Brand | None
    if code in (SuppressionReason.BLOCKED_RECIPIENT, SuppressionReason.HARD_BOUNCE):
        brand = None
    elif code == SuppressionReason.COMPLAINT:
        brand = delivery.campaign.brand
    else:
        return ""
    reason = SuppressionReason(code)
    raw = delivery.contact.address_for(channel)
    try:
        address = normalise_address(channel, raw) if raw else None
    except InvalidInput:
        address = None
    if address is None:
        logger.warning("delivery %s: %s but the contact has no %s address left", delivery.pk, code, channel)
        return "; no address to suppress"
    key = address_key(channel, address)
    if delivery.address_key and key != delivery.address_key:
        # The contact changed address since we sent; the new one did not bounce.
        logger.warning("delivery %s: %s for an address the contact no longer has", delivery.pk, code)
        return "; address changed since sending: not suppressed"
    if Suppression.objects.filter(
        address_key=key, channel=channel, brand=brand, reason=reason, lifted_at__isnull=True
    ).exists():
        return f"; already suppressed ({reason})"
    ledger.suppression_add(
        channel=channel,
        address=address,
        reason=reason,
        source=Source.LIFEVISION_WEBHOOK,
        principal=ledger.Principal(actor="system", recorded_by=f"lifevision-report {report.provider_id}"),
        brand=brand,
        contact=delivery.contact,
    )
    return f"; suppressed {reason}"
