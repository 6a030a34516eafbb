"""LifeVision callbacks in: delivery reports and inbound SMS (shared/LIFEVISION_API.md).

The webhook views (``integrations/lifevision/views.py``) verify the signature, validate the body
with ``report_parse`` / ``inbound_parse`` and store it once with ``callback_receive``: the unique
(provider, kind, dedupe_key) of ``CallbackReceipt`` makes LifeVision's at-least-once delivery
harmless. An actor then processes the receipt (``reports``, ``inbound``), in one transaction that
also marks the receipt processed (``receipt_process``), so a redelivered broker message changes
nothing twice. A receipt whose message the broker lost is picked up by ``callbacks_sweep``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from comms.campaigns.models import CallbackReceipt, Reply, ReplyStatus
from comms.core import jobs
from comms.errors import InvalidInput

logger = logging.getLogger(__name__)

PROVIDER = "lifevision"
REPORT = "report"
INBOUND = "inbound"

REPORT_STATUSES = ("queued", "sent", "delivered", "failed", "expired", "rejected")
MAX_SEGMENTS = 255
# Receipts older than this are left to an operator rather than retried for ever by the sweep.
SWEEP_HORIZON = dt.timedelta(days=1)


# --- parsing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    provider_id: str
    external_id: str | None
    status: str
    error_code: str | None
    segment: int
    segments: int
    occurred_at: dt.datetime | None

    @property
    def dedupe_key(self) -> str:
        return f"{self.provider_id}:{self.status}:{self.segment}"


@dataclass(frozen=True)
class Inbound:
    provider_id: str
    from_: str
    to: str
    text: str
    received_at: dt.datetime | None

    @property
    def dedupe_key(self) -> str:
        return self.provider_id


def _object(payload: object) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise InvalidInput("body", "must be a JSON object")
    return payload


def _text(payload: dict[str, Any], name: str, *, max_length: int, required: bool = True) -> str | None:
    value = payload.get(name)
    if value is None:
        if required:
            raise InvalidInput(name, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(name, "must be a string")
    value = value.strip() if name != "text" else value
    if required and not value and name != "text":
        raise InvalidInput(name, "is required")
    if len(value) > max_length:
        raise InvalidInput(name, f"is longer than {max_length} characters")
    return value


def _count(payload: dict[str, Any], name: str) -> int:
    value = payload.get(name)
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEGMENTS:
        raise InvalidInput(name, f"must be a whole number from 1 to {MAX_SEGMENTS}")
    return value


def _moment(payload: dict[str, Any], name: str) -> dt.datetime | None:
    value = payload.get(name)
    if value is None:
        return None
    parsed = None
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
    if parsed is None or timezone.is_naive(parsed):
        raise InvalidInput(name, "must be an ISO 8601 date-time with a time zone")
    return parsed


def report_parse(payload: object) -> Report:
    """Validate a delivery report; raises ``InvalidInput`` naming the first bad field."""
    data = _object(payload)
    provider_id = _text(data, "provider_id", max_length=100)
    status = _text(data, "status", max_length=20)
    if status not in REPORT_STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(REPORT_STATUSES)}")
    segment, segments = _count(data, "segment"), _count(data, "segments")
    if segment > segments:
        raise InvalidInput("segment", "is greater than segments")
    assert provider_id is not None
    return Report(
        provider_id=provider_id,
        external_id=_text(data, "external_id", max_length=100, required=False),
        status=status,
        error_code=_text(data, "error_code", max_length=60, required=False) or None,
        segment=segment,
        segments=segments,
        occurred_at=_moment(data, "occurred_at"),
    )


def inbound_parse(payload: object) -> Inbound:
    """Validate an inbound SMS; raises ``InvalidInput`` naming the first bad field."""
    data = _object(payload)
    provider_id = _text(data, "provider_id", max_length=100)
    from_ = _text(data, "from", max_length=32)
    to = _text(data, "to", max_length=20)
    text = _text(data, "text", max_length=2000)
    assert provider_id is not None and from_ is not None and to is not None and text is not None
    return Inbound(
        provider_id=provider_id,
        from_=from_,
        to=to,
        text=text,
        received_at=_moment(data, "received_at"),
    )


# --- receiving ------------------------------------------------------------------------------


def callback_receive(*, kind: str, dedupe_key: str, payload: dict[str, Any]) -> bool:
    """Store one callback and enqueue its processing after commit. False for a duplicate."""
    try:
        with transaction.atomic():
            receipt = CallbackReceipt.objects.create(
                provider=PROVIDER, kind=kind, dedupe_key=dedupe_key, payload=payload
            )
            # robust: if the broker is down the receipt is still stored, and the sweep sends it.
            transaction.on_commit(lambda: _enqueue_receipt(kind, receipt.pk), robust=True)
    except IntegrityError:
        return False
    except DataError:
        # PostgreSQL's jsonb refuses some JSON that Python accepts (\u0000, lone surrogates).
        raise InvalidInput("body", "contains characters that cannot be stored") from None
    return True


def _enqueue_receipt(kind: str, receipt_id: int) -> None:
    if kind == REPORT:
        jobs.enqueue("process_delivery_report", receipt_id)
    elif kind == INBOUND:
        jobs.enqueue("process_inbound_sms", receipt_id)


def enqueue_reply(reply_id: int) -> None:
    jobs.enqueue("send_reply", reply_id)


def callbacks_sweep(*, older_than: dt.timedelta | None = None) -> dict[str, int]:
    """Re-enqueue receipts and replies the broker may have lost (left unprocessed for a while)."""
    now = timezone.now()
    if older_than is None:
        older_than = dt.timedelta(seconds=settings.SEND_SWEEP_AFTER_SECONDS)
    cutoff = now - older_than
    horizon = now - max(SWEEP_HORIZON, dt.timedelta(seconds=settings.SEND_RETRY_WINDOW))
    receipts = list(
        CallbackReceipt.objects.filter(
            provider=PROVIDER, processed_at__isnull=True, received_at__lte=cutoff, received_at__gte=horizon
        )
        .order_by("received_at")
        .values_list("id", "kind")[:1000]
    )
    for receipt_id, kind in receipts:
        _enqueue_receipt(kind, receipt_id)
    replies = list(
        Reply.objects.filter(status=ReplyStatus.QUEUED, created_at__lte=cutoff, created_at__gte=horizon)
        .order_by("created_at")
        .values_list("id", flat=True)[:1000]
    )
    for reply_id in replies:
        enqueue_reply(reply_id)
    return {"receipts": len(receipts), "replies": len(replies)}


def receipt_process(receipt_id: int, kind: str, handle: Callable[[CallbackReceipt], str]) -> str:
    """Run ``handle`` once per receipt, under its row lock, and record the outcome with it (the
    processing of ``reports`` and ``inbound``)."""
    with transaction.atomic():
        receipt = CallbackReceipt.objects.select_for_update().filter(pk=receipt_id, kind=kind).first()
        if receipt is None:
            logger.warning("callback receipt %s (%s) not found", receipt_id, kind)
            return "missing"
        if receipt.processed_at is not None:
            return receipt.outcome
        outcome = handle(receipt)
        receipt.processed_at = timezone.now()
        receipt.outcome = outcome[:200]
        receipt.save(update_fields=["processed_at", "outcome"])
    logger.info("callback receipt %s (%s): %s", receipt_id, kind, outcome)
    return outcome
