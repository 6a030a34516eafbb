"""Helpers for the LifeVision callback tests: signed posts to the webhooks, sent deliveries."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from django.test import Client
from django.utils import timezone

from comms.campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from comms.contacts.models import Contact
from comms.suppression.keys import address_key
from comms.suppression.models import Purpose
from integrations.lifevision.fake import DEFAULT_WEBHOOK_SECRET
from integrations.lifevision.signatures import HEADER, sign

REPORTS = "/hooks/lifevision/reports"
INBOUND = "/hooks/lifevision/inbound"


def post_signed(
    path: str,
    payload: Any = None,
    *,
    raw: bytes | None = None,
    secret: str = DEFAULT_WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
) -> Any:
    """POST ``payload`` (or ``raw``) with a valid signature unless one is given."""
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {}
    if signature is None:
        signature = sign(secret, body, int(time.time()) if timestamp is None else timestamp)
    if signature:
        headers[HEADER] = signature
    return Client().post(path, body, content_type="application/json", headers=headers)


def report(delivery: Delivery, status: str = "delivered", **fields: Any) -> dict[str, Any]:
    return {
        "provider_id": delivery.provider_id,
        "external_id": str(delivery.external_id),
        "status": status,
        "error_code": None,
        "segment": 1,
        "segments": 1,
        "occurred_at": timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        **fields,
    }


def inbound(from_: str, text: str, to: str = "FIT24", provider_id: str | None = None) -> dict[str, Any]:
    return {
        "provider_id": provider_id or f"lv-in-{uuid.uuid4()}",
        "from": from_,
        "to": to,
        "text": text,
        "received_at": timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def sent_delivery(contact: Contact, purpose: Purpose, channel: str = "sms") -> Delivery:
    """A delivery LifeVision accepted, as the send path leaves it."""
    campaign = Campaign.objects.create(
        brand=contact.brand,
        name="Tilbud",
        channel=channel,
        purpose=purpose,
        subject="Tilbud" if channel == "email" else "",
        text="Hei! 20% i dag.",
        status=CampaignStatus.SENT,
    )
    address = contact.address_for(channel) or ""
    return Delivery.objects.create(
        campaign=campaign,
        contact=contact,
        channel=channel,
        status=DeliveryStatus.SENT,
        reason="consent",
        external_id=uuid.uuid4(),
        provider_id=f"lv-{uuid.uuid4()}",
        address_key=address_key(channel, address),
        segments=1,
        sent_at=timezone.now(),
    )
