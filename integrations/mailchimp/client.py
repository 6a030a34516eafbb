"""Mailchimp transport: the official ``mailchimp-marketing`` client, its quirks turned into one
``IntegrationError`` and every call held under the shared concurrency limiter.

Quirks handled here (shared/reference/mailchimp/client-method-map.md): an empty-bodied answer
(204, or a 5xx/429 without a body) comes back as a raw ``requests.Response`` instead of raising;
``ApiClientError.text`` is the raw problem+json string; network errors arrive as an
``ApiClientError`` without a status. Nothing outside this package imports ``mailchimp_marketing``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import mailchimp_marketing
import requests
from mailchimp_marketing.api_client import ApiClientError

from integrations import health
from integrations.errors import IntegrationError

PROVIDER = "mailchimp"
SEGMENT_CHUNK = 500
PAGE_SIZE = 1000
_EXCERPT_CHARS = 200
_LIMITER_WAIT_S = 10.0
# Mailchimp answers these when a member cannot take the status we asked for.
COMPLIANCE_STATE = "Member In Compliance State"
FORGOTTEN = "Forgotten Email Not Subscribed"


class MailchimpError(IntegrationError):
    """An ``IntegrationError`` that also carries Mailchimp's HTTP status and problem title."""

    def __init__(
        self,
        message: str,
        permanent: bool,
        *,
        status: int | None,
        title: str = "",
        retry_after: float | None = None,
        held: str = "",
    ) -> None:
        super().__init__(
            message, permanent, retry_after=retry_after, throttled=status == 429, status=status
        )
        self.title = title
        # Not sent at all: "provider_unavailable" (open circuit), "throttled", "rate_limited" or
        # "busy" (every shared connection in use). Only the first is an outage.
        self.held = held


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


# --- the shared limiter -----------------------------------------------------------------------

_limiter: Any = None


def _get_limiter() -> Any:
    """A dramatiq ``ConcurrentRateLimiter`` on Redis when ``REDIS_URL`` is set (shared by every
    worker process), else in-process."""
    global _limiter
    if _limiter is None:
        from django.conf import settings
        from dramatiq.rate_limits import ConcurrentRateLimiter
        from dramatiq.rate_limits.backends import RedisBackend, StubBackend

        redis_url = getattr(settings, "REDIS_URL", None)
        backend = RedisBackend(url=redis_url) if redis_url else StubBackend()  # type: ignore[no-untyped-call]
        # ttl: a worker killed mid-call gives its slot back after the longest call can take.
        _limiter = ConcurrentRateLimiter(  # type: ignore[no-untyped-call]
            backend, "mailchimp-connections", limit=settings.MAILCHIMP_MAX_CONNECTIONS, ttl=150_000
        )
    return _limiter


@contextmanager
def connection_slot() -> Iterator[None]:
    """Hold one of the shared Mailchimp connections; waits briefly, then fails transiently."""
    limiter = _get_limiter()
    deadline = time.monotonic() + _LIMITER_WAIT_S
    while True:
        with limiter.acquire(raise_on_failure=False) as acquired:
            if acquired:
                yield
                return
        if time.monotonic() >= deadline:
            raise MailchimpError(
                "all Mailchimp connections are busy", False, status=None, retry_after=1.0, held="busy"
            )
        time.sleep(0.05)


# --- the client -------------------------------------------------------------------------------


class MailchimpClient:
    """The few Mailchimp calls comms makes; each returns a dict or raises ``MailchimpError``."""

    def __init__(
        self, api_key: str, server: str | None = None, base_url: str | None = None, timeout: float = 30.0
    ) -> None:
        if not api_key:
            raise ValueError("api_key must be set")
        if base_url and "server" in base_url:
            raise ValueError('base_url must not contain "server": the client rewrites that text')
        self._api_key = api_key
        self._mc = mailchimp_marketing.Client()
        config: dict[str, Any] = {"api_key": api_key, "timeout": timeout}
        if server:
            config["server"] = server
        elif base_url:
            config["server"] = "us1"  # unused with an explicit host, but the client wants one
        self._mc.set_config(config)
        if base_url:
            self._mc.api_client.host = base_url.rstrip("/") + "/3.0"

    @classmethod
    def from_settings(cls) -> MailchimpClient:
        """A client configured from ``MAILCHIMP_API_KEY``, ``_SERVER`` and ``_BASE_URL``."""
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        if not settings.MAILCHIMP_API_KEY:
            raise ImproperlyConfigured("MAILCHIMP_API_KEY must be set")
        return cls(settings.MAILCHIMP_API_KEY, settings.MAILCHIMP_SERVER, settings.MAILCHIMP_BASE_URL)

    def __repr__(self) -> str:
        return f"MailchimpClient({self._mc.api_client.host!r})"

    # --- members ------------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        return self._call("ping", self._mc.ping.get)

    def member_set(
        self,
        list_id: str,
        email: str,
        *,
        status: str | None = None,
        status_if_new: str,
        merge_fields: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Upsert (PUT by subscriber hash). ``status`` also changes an existing member."""
        body: dict[str, Any] = {"email_address": email, "status_if_new": status_if_new}
        if status is not None:
            body["status"] = status
        if merge_fields:
            body["merge_fields"] = merge_fields
        return self._call("set member", self._mc.lists.set_list_member, list_id, subscriber_hash(email), body)

    def member_get(self, list_id: str, email: str) -> dict[str, Any] | None:
        """The member, or None when Mailchimp does not know the address (404)."""
        try:
            return self._call("get member", self._mc.lists.get_list_member, list_id, subscriber_hash(email))
        except MailchimpError as exc:
            if exc.status == 404:
                return None
            raise

    def members(
        self, list_id: str, *, status: str, since_last_changed: str | None = None
    ) -> list[dict[str, Any]]:
        """Every member with ``status`` (changed since the ISO time, when given), all pages."""
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            params: dict[str, Any] = {"status": status, "count": PAGE_SIZE, "offset": offset}
            if since_last_changed:
                params["since_last_changed"] = since_last_changed
            page = self._call("list members", self._mc.lists.get_list_members_info, list_id, **params)
            batch = page.get("members") or []
            found.extend(batch)
            offset += len(batch)
            if not batch or offset >= int(page.get("total_items") or 0):
                return found

    def members_add_new(self, list_id: str, emails: Sequence[str]) -> int:
        """Add the addresses Mailchimp does not know yet as ``subscribed``; existing members keep
        their status (an unsubscribed one stays so). Returns how many were created."""
        created = 0
        for start in range(0, len(emails), SEGMENT_CHUNK):
            body = {
                "members": [
                    {"email_address": e, "status": "subscribed"}
                    for e in emails[start : start + SEGMENT_CHUNK]
                ],
                "update_existing": False,
            }
            result = self._call("add members", self._mc.lists.batch_list_members, list_id, body)
            created += int(result.get("total_created") or 0)
        return created

    # --- segments and campaigns --------------------------------------------------------------
    def segment_create(self, list_id: str, name: str, emails: Sequence[str]) -> str:
        """A static segment holding exactly ``emails`` (added in chunks of 500); returns its id."""
        segment = self._call(
            "create segment", self._mc.lists.create_segment, list_id, {"name": name, "static_segment": []}
        )
        segment_id = str(segment["id"])
        self.segment_change(list_id, segment_id, add=emails)
        return segment_id

    def segment_change(
        self, list_id: str, segment_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        for start in range(0, max(len(add), len(remove)), SEGMENT_CHUNK):
            body = {
                "members_to_add": list(add[start : start + SEGMENT_CHUNK]),
                "members_to_remove": list(remove[start : start + SEGMENT_CHUNK]),
            }
            # Argument order trap: the generated client takes the body first.
            self._call("change segment", self._mc.lists.batch_segment_members, body, list_id, segment_id)

    def campaign_create(
        self, list_id: str, segment_id: str, *, subject: str, title: str, from_name: str, reply_to: str
    ) -> str:
        campaign = self._call(
            "create campaign",
            self._mc.campaigns.create,
            {
                "type": "regular",
                "recipients": {"list_id": list_id, "segment_opts": {"saved_segment_id": int(segment_id)}},
                "settings": {
                    "subject_line": subject,
                    "title": title,
                    "from_name": from_name,
                    "reply_to": reply_to,
                },
            },
        )
        return str(campaign["id"])

    def campaign_set_content(self, campaign_id: str, *, html: str, text: str) -> None:
        self._call(
            "set content", self._mc.campaigns.set_content, campaign_id, {"html": html, "plain_text": text}
        )

    def campaign_send(self, campaign_id: str) -> None:
        self._call("send campaign", self._mc.campaigns.send, campaign_id)

    # --- the one seam -------------------------------------------------------------------------
    def _call(self, what: str, method: Callable[..., Any], /, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # The same rules as every provider (integrations.health): no call while the circuit is
        # open or a 429's pause lasts, and one shared rate limit.
        try:
            health.admit(PROVIDER)
        except health.Held as held:
            raise MailchimpError(
                f"Mailchimp not called ({what}): {held}",
                False,
                status=None,
                retry_after=held.delay_s,
                held=held.reason,
            ) from None
        with connection_slot():
            try:
                result = method(*args, **kwargs)
            except ApiClientError as exc:
                raise self._reported(self._error(what, exc.status_code, str(exc.text))) from None
        if isinstance(result, requests.Response):
            # Empty bodies come back raw, errors included (an empty 503 or 429 does not raise).
            if not result.ok:
                raise self._reported(self._error(what, result.status_code, result.text))
            health.record_success(PROVIDER)
            return {}
        health.record_success(PROVIDER)
        return result if isinstance(result, dict) else {}

    @staticmethod
    def _reported(error: MailchimpError) -> MailchimpError:
        """Tell the shared health state what Mailchimp's answer means, then hand the error back."""
        if error.throttled:
            health.record_throttle(PROVIDER, error.retry_after)
            health.record_success(PROVIDER)
        elif error.permanent:
            health.record_success(PROVIDER)  # it answered
        else:
            health.record_failure(PROVIDER)
        return error

    def _error(self, what: str, status: int | None, text: str) -> MailchimpError:
        text = text.replace(self._api_key, "[redacted]")
        if status is None:
            return MailchimpError(f"Mailchimp unreachable ({what}): {_excerpt(text)}", False, status=None)
        title, detail = _problem(text)
        message = f"Mailchimp answered {status} to {what}: {title or ''} {_excerpt(detail)}".replace(
            "  ", " "
        )
        if status == 429:
            return MailchimpError(message, False, status=status, title=title, retry_after=1.0)
        transient = status >= 500 or status == 408 or (status == 403 and not text.strip())
        return MailchimpError(message, not transient, status=status, title=title)


def _problem(text: str) -> tuple[str, str]:
    """(title, detail) from a problem+json body; the raw text when it is not JSON."""
    try:
        data = json.loads(text)
    except ValueError:
        return "", text
    if not isinstance(data, dict):
        return "", text
    detail = str(data.get("detail") or "")
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        detail += " " + "; ".join(
            f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict)
        )
    return str(data.get("title") or ""), detail


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _EXCERPT_CHARS:
        return flat[:_EXCERPT_CHARS] + "…"
    return flat or "(empty body)"
