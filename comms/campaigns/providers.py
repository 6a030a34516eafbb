"""Which provider client a message goes to. Only ``comms.campaigns.sending`` calls
``provider_send``: marketing messages after the gate, under the sender's lock; the two kinds of
service message (a reply to an inbound SMS, a member's confirmation or fresh link) without the
marketing gate, each recorded in its own table and sent only to the person who just asked."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from django.conf import settings

from comms.core.metrics import provider_error
from integrations import health
from integrations.errors import IntegrationError
from integrations.health import Held
from integrations.lifevision.client import LifeVisionClient, MessageResult, OutboundMessage

__all__ = ["Held", "MessageResult", "OutboundMessage", "provider_admit", "provider_send"]

_local = threading.local()
MAX_BATCH = 1000


def _lifevision() -> LifeVisionClient:
    if not settings.LIFEVISION_BASE_URL or not settings.LIFEVISION_API_KEY:
        raise IntegrationError(
            "LifeVision is not configured (LIFEVISION_BASE_URL, LIFEVISION_API_KEY)", permanent=True
        )
    config = (settings.LIFEVISION_BASE_URL, settings.LIFEVISION_API_KEY)
    client: LifeVisionClient | None = getattr(_local, "lifevision", None)
    if client is None or getattr(_local, "lifevision_config", None) != config:
        client = LifeVisionClient(base_url=config[0], api_key=config[1])
        _local.lifevision, _local.lifevision_config = client, config
    return client


def provider_admit(provider: str) -> bool:
    """Ask before a hand-off whether ``provider`` may be called now (its circuit, its 429 pause,
    the shared rate limit). Raises ``Held``; returns True when this hand-off is the probe of an
    open circuit. Call it before the gate: the gate is asked after it, right before the hand-off."""
    return health.admit(provider)


def provider_send(provider: str, messages: Sequence[OutboundMessage]) -> list[MessageResult]:
    """Hand ``messages`` over; the provider's answer is reported to its shared health state (a
    transient failure counts towards opening the circuit, a 429 throttles every sender)."""
    if provider != "lifevision":
        raise IntegrationError(f"provider {provider!r} cannot send campaign messages here", permanent=True)
    client = _lifevision()
    results: list[MessageResult] = []
    try:
        for start in range(0, len(messages), MAX_BATCH):
            results.extend(client.send_batch(messages[start : start + MAX_BATCH]))
    except IntegrationError as exc:
        provider_error(provider, permanent=exc.permanent)
        if exc.throttled:
            health.record_throttle(provider, exc.retry_after)
            health.record_success(provider)  # it answered: a 429 is not an outage
        elif exc.permanent:
            health.record_success(provider)
        else:
            health.record_failure(provider)
        raise
    health.record_success(provider)
    return results
