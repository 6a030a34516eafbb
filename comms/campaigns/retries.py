"""When a message that did not reach its provider is tried again (DESIGN §4; ``integrations.health``).

The hand-off (``comms.campaigns.sending``) decides and hands over; what it could not hand over
comes here. A batch held back (a 429's pause, the shared rate limit) is retried without using up
anything; a transient failure or an open circuit is retried with exponential backoff and jitter
until ``COMMS_SEND_RETRY_WINDOW`` after the message's first failure, then the message is
recorded as failed (``provider_unavailable``), never lost, and a marketer can retry it. Each
retry asks the gate again. Service messages (replies, member messages) and segment sends follow
the same rules, their window counted from their creation or their first failure.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Min, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from comms.campaigns.finish import PENDING, campaign_finish_if_done
from comms.campaigns.models import Campaign, Delivery, DeliveryStatus
from comms.campaigns.providers import SegmentSender
from integrations import health
from integrations.errors import IntegrationError
from integrations.health import Held

logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """The provider is unavailable for now; retry after ``delay_ms`` (the actor raises
    ``dramatiq.Retry`` with it)."""

    def __init__(self, message: str, delay_ms: int) -> None:
        super().__init__(message)
        self.delay_ms = delay_ms


class HandOffStopped(Exception):
    """The batch did not reach the provider: ``kind`` is ``failed`` (a transient error),
    ``throttled`` (a 429) or ``held`` (not admitted: open circuit, pause, rate limit)."""

    def __init__(
        self,
        kind: str,
        delivery_ids: list[int],
        *,
        error: IntegrationError | None = None,
        held: Held | None = None,
    ) -> None:
        super().__init__(error.message if error is not None else str(held))
        self.kind = kind
        self.delivery_ids = delivery_ids
        self.error = error
        self.held = held


def record_stop(stopped: HandOffStopped, *, batch_ids: list[int]) -> float | None:
    """Record why the batch did not reach the provider; returns seconds until its retry, or None
    when none of it is left to retry (each message past its window is failed, not lost)."""
    ids = stopped.delivery_ids
    now = timezone.now()
    held, error = stopped.held, stopped.error
    if stopped.kind == "throttled" or (held is not None and held.reason != "provider_unavailable"):
        # The provider asked us to slow down, or the shared limit did: nothing is used up. Only
        # enqueued_at moves on, so the sweep leaves the batch in the broker's hands.
        Delivery.objects.filter(pk__in=ids, status__in=PENDING).update(enqueued_at=now)
        if held is not None:
            return held.delay_s
        assert error is not None
        return throttled_delay(error)
    window = dt.timedelta(seconds=settings.SEND_RETRY_WINDOW)
    with transaction.atomic():
        pending = Delivery.objects.filter(pk__in=ids, status__in=PENDING)
        if error is not None:
            pending.update(
                attempts=F("attempts") + 1,
                last_error=error.message[:300],
                enqueued_at=now,
                failing_since=Coalesce(F("failing_since"), Value(now)),
            )
        else:
            # Held by an open circuit: the outage runs the window's clock, and the campaign shows
            # it is paused because its provider is unavailable, since the circuit opened.
            assert held is not None
            since = dt.datetime.fromtimestamp(held.since or now.timestamp(), tz=dt.UTC)
            pending.update(enqueued_at=now, failing_since=Coalesce(F("failing_since"), Value(now)))
            Campaign.objects.filter(
                pk__in=pending.values("campaign_id"), provider_paused_since__isnull=True
            ).update(provider_paused_since=since)
        exhausted = pending.filter(failing_since__lte=now - window)
        campaign_ids = set(exhausted.values_list("campaign_id", flat=True))
        if campaign_ids:
            exhausted.update(status=DeliveryStatus.FAILED, reason="provider_unavailable")
            logger.warning(
                "deliveries failed after %ss of provider failures (campaigns %s)",
                int(settings.SEND_RETRY_WINDOW),
                sorted(campaign_ids),
            )
        left = pending.aggregate(attempts=Max("attempts"), since=Min("failing_since"))
    for campaign_id in campaign_ids:
        campaign_finish_if_done(campaign_id=campaign_id)
    if left["since"] is None:
        # Nothing that failed is left; the rest of the batch (the gate's denials rolled back
        # with it) is decided by a prompt retry.
        rest = Delivery.objects.filter(pk__in=batch_ids, status__in=PENDING).exists()
        return settings.SEND_BACKOFF_MIN if rest else None
    delay = held.delay_s if held is not None else health.backoff(int(left["attempts"] or 1))
    first_failure: dt.datetime = left["since"]
    return within_window(delay, (first_failure + window - now).total_seconds())


def throttled_delay(error: IntegrationError) -> float:
    """After a 429: the provider's Retry-After (1 s without one), jittered."""
    return health.jitter(max(float(error.retry_after or 1.0), 0.05)) * 2


def within_window(delay: float, remaining: float) -> float:
    """Retry no later than the window's end, so a message is failed when its window is over."""
    return max(min(delay, remaining + 0.01), 0.01)


def _service_retry(
    *, created_at: dt.datetime, attempts: int, error: IntegrationError | None, held: Held | None
) -> float | None:
    """When to retry a service message that did not reach the provider, or None when its retry
    window (from its creation) is over: the same rules as a campaign's messages."""
    if held is not None and held.reason != "provider_unavailable":
        return held.delay_s  # paused or rate limited: nothing used up
    if error is not None and error.throttled:
        return throttled_delay(error)
    remaining = (
        created_at + dt.timedelta(seconds=settings.SEND_RETRY_WINDOW) - timezone.now()
    ).total_seconds()
    if remaining <= 0:
        return None
    return within_window(held.delay_s if held is not None else health.backoff(attempts), remaining)


def service_message_stopped(row: Any, stop: IntegrationError | Held | None) -> RetryLater | None:
    """For a reply or member message that did not reach the provider: the retry to raise, or
    None after marking it failed when its window is over."""
    if stop is None:
        return None
    held = stop if isinstance(stop, Held) else None
    error = stop if isinstance(stop, IntegrationError) else None
    if error is not None and error.throttled:
        row.attempts -= 1  # a 429 is not an attempt that failed
    delay = _service_retry(created_at=row.created_at, attempts=row.attempts, error=error, held=held)
    if delay is None:
        row.status = "failed"
        row.last_error = (row.last_error or str(stop))[:300]
        return None
    return RetryLater(str(stop), max(int(delay * 1000), 1))



def segment_retry_later(
    provider: SegmentSender, campaign: Campaign, error: IntegrationError, *, held: str
) -> tuple[RetryLater | None, str]:
    """For a segment send that failed transiently: (the retry to raise, or None when the send's
    window is over and it must fail; the error to fail it with). ``held`` says why the call was
    not made at all: ``throttled``, ``rate_limited`` or ``busy`` use up nothing; an open circuit
    (``provider_unavailable``) runs the clock and shows the campaign as paused."""
    now = timezone.now()
    if error.throttled or held in ("throttled", "rate_limited", "busy"):
        delay = float(error.retry_after or 1.0)
        return RetryLater(error.message, max(int((delay + health.jitter(delay)) * 1000), 1)), ""
    if provider.segment_state(campaign) is None:  # before the snapshot nothing was called
        return RetryLater(error.message, int(health.backoff(1) * 1000)), ""
    is_outage = held == "provider_unavailable"
    state = provider.segment_failed(campaign, error=None if is_outage else error.message, at=now)
    if is_outage:
        since = health.state(provider.name).open_since
        Campaign.objects.filter(pk=campaign.pk, provider_paused_since__isnull=True).update(
            provider_paused_since=dt.datetime.fromtimestamp(since, tz=dt.UTC) if since else now
        )
    window = dt.timedelta(seconds=settings.SEND_RETRY_WINDOW)
    remaining = ((state.failing_since or now) + window - now).total_seconds()
    if remaining <= 0:
        return None, state.last_error or error.message
    delay = float(error.retry_after or 0.0) if is_outage else health.backoff(state.attempts)
    return RetryLater(error.message, max(int(min(delay, remaining + 0.01) * 1000), 1)), ""
