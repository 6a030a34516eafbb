"""LifeVision as a provider (``comms.campaigns.providers``): it sends SMS and e-mail messages in
batches; its delivery reports and inbound SMS come back at ``hooks/lifevision/``.

What it holds of a person: nothing but the messages it was handed (each once, with the address
in it), kept as its own record under the processor agreement. Its API (shared/LIFEVISION_API.md)
has no call to forget a recipient, so an erasure needs no call; the export lists the provider
ids and statuses of the person's messages. Future sends are impossible anyway: the addresses
are suppressed by keyed hash.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import ClassVar

from django.conf import settings

from comms.campaigns.models import Delivery
from comms.campaigns.providers import MessageResult, MessageSender, OutboundMessage, Propagation
from integrations.errors import IntegrationError
from integrations.lifevision.client import MAX_BATCH, LifeVisionClient

NOTE = (
    "LifeVision keeps no audience of ours and has no call to forget a recipient: each message "
    "was handed over once. Nothing to propagate; the addresses are suppressed by keyed hash."
)


class LifeVision(MessageSender):
    name: ClassVar[str] = "lifevision"
    label: ClassVar[str] = "LifeVision"
    urls: ClassVar[str | None] = "integrations.lifevision.urls"
    max_batch: ClassVar[int] = MAX_BATCH

    def __init__(self) -> None:
        self._local = threading.local()  # a client holds a requests.Session: one per thread

    def configured(self) -> bool:
        return bool(settings.LIFEVISION_BASE_URL and settings.LIFEVISION_API_KEY)

    def _client(self) -> LifeVisionClient:
        if not self.configured():
            raise IntegrationError(
                "LifeVision is not configured (LIFEVISION_BASE_URL, LIFEVISION_API_KEY)", permanent=True
            )
        config = (settings.LIFEVISION_BASE_URL or "", settings.LIFEVISION_API_KEY or "")
        client: LifeVisionClient | None = getattr(self._local, "client", None)
        if client is None or getattr(self._local, "config", None) != config:
            client = LifeVisionClient(base_url=config[0], api_key=config[1])
            self._local.client, self._local.config = client, config
        return client

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[MessageResult]:
        return self._client().send_batch(messages)

    def holdings(self, *, contact_id: int) -> dict[str, object]:
        messages = [
            {"delivery_id": pk, "provider_id": provider_id, "status": status}
            for pk, provider_id, status in Delivery.objects.filter(
                contact_id=contact_id, campaign__provider=self.name
            )
            .exclude(provider_id="")
            .order_by("id")
            .values_list("id", "provider_id", "status")
        ]
        return {
            "status": "configured" if self.configured() else "not configured",
            "note": NOTE,
            "messages": messages,
        }

    def erasure(self) -> Propagation:
        return Propagation(self.name, "nothing_to_do", NOTE)
