"""Which provider client a message goes to. Only ``comms.campaigns.sending`` calls
``provider_send``: marketing messages after the gate, under the sender's lock; the two kinds of
service message (a reply to an inbound SMS, a member's confirmation or fresh link) without the
marketing gate, each recorded in its own table and sent only to the person who just asked."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from django.conf import settings

from comms.core.metrics import provider_error
from integrations.errors import IntegrationError
from integrations.lifevision.client import LifeVisionClient, MessageResult, OutboundMessage

__all__ = ["MessageResult", "OutboundMessage", "provider_send"]

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


def provider_send(provider: str, messages: Sequence[OutboundMessage]) -> list[MessageResult]:
    if provider != "lifevision":
        raise IntegrationError(f"provider {provider!r} cannot send campaign messages here", permanent=True)
    client = _lifevision()
    results: list[MessageResult] = []
    try:
        for start in range(0, len(messages), MAX_BATCH):
            results.extend(client.send_batch(messages[start : start + MAX_BATCH]))
    except IntegrationError as exc:
        provider_error(provider, permanent=exc.permanent)
        raise
    return results
