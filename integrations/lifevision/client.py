"""LifeVision transport: one ``POST /v1/messages`` per call, mapped onto ``IntegrationError``.

The client is single-shot on purpose: the caller (the send actor) retries with the same
``external_id``s, which LifeVision deduplicates, so a retry can never send twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from types import TracebackType
from typing import Literal

import requests

from comms.campaigns.providers import MessageResult, OutboundMessage
from integrations.errors import IntegrationError

MAX_BATCH = 1000
Channel = Literal["sms", "email"]
ResultStatus = Literal["accepted", "rejected"]
Timeout = float | tuple[float, float]

_BODY_EXCERPT_CHARS = 200
_DEFAULT_RETRY_AFTER = 1.0


class LifeVisionClient:
    """Sends batches to a server speaking the LifeVision contract (shared/LIFEVISION_API.md).

    Holds one ``requests.Session``; like the session, a client is meant to be used by one thread.
    """

    def __init__(self, base_url: str, api_key: str, timeout: Timeout = (3.05, 15)) -> None:
        if not base_url:
            raise ValueError("base_url must be set")
        if not api_key:
            raise ValueError("api_key must be set")
        self.base_url = base_url
        self.messages_url = base_url.rstrip("/") + "/v1/messages"
        self.timeout = timeout
        self._api_key = api_key
        self._session = requests.Session()

    @classmethod
    def from_settings(cls) -> LifeVisionClient:
        """A client configured from ``LIFEVISION_BASE_URL`` and ``LIFEVISION_API_KEY``."""
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        base_url = getattr(settings, "LIFEVISION_BASE_URL", None)
        api_key = getattr(settings, "LIFEVISION_API_KEY", None)
        if not base_url or not api_key:
            raise ImproperlyConfigured("LIFEVISION_BASE_URL and LIFEVISION_API_KEY must be set")
        return cls(str(base_url), str(api_key))

    def __repr__(self) -> str:
        return f"LifeVisionClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> LifeVisionClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[MessageResult]:
        """Hand up to 1,000 messages to LifeVision; returns one result per message, in order.

        Raises ``IntegrationError`` (``permanent`` for 400/401 and other client errors) and
        ``ValueError`` for a batch larger than the contract allows. An empty batch sends nothing.
        """
        if len(messages) > MAX_BATCH:
            raise ValueError(f"a LifeVision batch holds at most {MAX_BATCH} messages, got {len(messages)}")
        if not messages:
            return []
        body = json.dumps({"messages": [message.to_json() for message in messages]}).encode()
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": messages[0].external_id,
        }
        try:
            response = self._session.post(
                self.messages_url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                # A redirect would turn the POST into a GET; a moved API is a configuration error.
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise IntegrationError(
                f"LifeVision unreachable: {type(exc).__name__}: {self._excerpt(str(exc))}", False
            ) from None

        status = response.status_code
        if status == 202:
            return self._parse_results(response, messages)
        detail = f"LifeVision answered {status}: {self._excerpt(response.text)}"
        if status == 429:
            retry_after = _parse_retry_after(response.headers.get("Retry-After"))
            raise IntegrationError(detail, False, retry_after=retry_after, throttled=True, status=status)
        if status >= 500 or status == 408 or 200 <= status < 300:
            # Any other 2xx is off-contract; retrying with the same ids is safe, so treat it as transient.
            raise IntegrationError(detail, False, status=status)
        # 400, 401 and every other client error or redirect: repeating the request cannot help.
        raise IntegrationError(detail, True, status=status)

    def _parse_results(
        self, response: requests.Response, messages: Sequence[OutboundMessage]
    ) -> list[MessageResult]:
        # A 202 we cannot read may still mean the batch was taken: retrying with the same ids is safe.
        try:
            payload = response.json()
        except ValueError:
            raise IntegrationError(
                f"LifeVision answered 202 with invalid JSON: {self._excerpt(response.text)}", False
            ) from None
        entries = payload.get("messages") if isinstance(payload, dict) else None
        if not isinstance(entries, list):
            raise IntegrationError("LifeVision answered 202 without a messages list", False)
        by_external_id: dict[str, MessageResult] = {}
        for entry in entries:
            result = _parse_result(entry)
            if result is None:
                raise IntegrationError(
                    f"LifeVision answered 202 with a malformed result: {self._excerpt(repr(entry))}",
                    False,
                )
            by_external_id.setdefault(result.external_id, result)
        missing = [m.external_id for m in messages if m.external_id not in by_external_id]
        if missing:
            raise IntegrationError(
                f"LifeVision answered 202 without results for {len(missing)} message(s), "
                f"first {missing[0]!r}",
                False,
            )
        return [by_external_id[m.external_id] for m in messages]

    def _excerpt(self, text: str) -> str:
        """A short, single-line quote of provider text, with our key blanked out before cutting."""
        return _excerpt(text.replace(self._api_key, "[redacted]"))


def _parse_result(entry: object) -> MessageResult | None:
    if not isinstance(entry, dict):
        return None
    external_id = entry.get("external_id")
    provider_id = entry.get("provider_id")
    status = entry.get("status")
    error_code = entry.get("error_code")
    if not isinstance(external_id, str) or not external_id:
        return None
    if provider_id is not None and not isinstance(provider_id, str):
        return None
    if error_code is not None and not isinstance(error_code, str):
        return None
    if status == "accepted":
        return MessageResult(external_id, provider_id, "accepted", error_code)
    if status == "rejected":
        return MessageResult(external_id, provider_id, "rejected", error_code)
    return None


def _parse_retry_after(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header; anything unreadable falls back to one second."""
    if value is None:
        return _DEFAULT_RETRY_AFTER
    try:
        seconds = float(value.strip())
    except ValueError:
        return _DEFAULT_RETRY_AFTER
    if not math.isfinite(seconds) or seconds < 0:
        return _DEFAULT_RETRY_AFTER
    return seconds


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _BODY_EXCERPT_CHARS:
        return flat[:_BODY_EXCERPT_CHARS] + "…"
    return flat or "(empty body)"
