"""The provider contract: what a provider can do, what it raises, and which one a name means.

In the spirit of healthchecks' transports: one class per vendor (``integrations/<vendor>/
provider.py``), chosen by name from ``settings.PROVIDERS`` (name -> dotted path), the name a
campaign's ``provider`` field holds. A provider has one or more capabilities:

- ``MessageSender``: ``send_batch(messages)`` hands over a batch of messages, each with its
  idempotency key (``OutboundMessage.external_id``), and answers one ``MessageResult`` each;
  its delivery reports come back to ``hooks/<name>/reports`` (each message's ``callback_url``).
- ``SegmentSender``: the provider sends a campaign in bulk itself, to a segment of its audience
  built at send time; ``segment_*`` build it, take withdrawn members out of it and send it.
- Callbacks in: ``urls`` names the URLconf mounted at ``hooks/<name>/`` (its views verify the
  provider's signature, store the body once and let an actor process it).
- Personal data: ``holdings(contact_id)`` says what it keeps of a person and ``erasure`` what an
  erasure asks of it (the rights export and the erasure's answer list every provider).

Errors: every call raises ``IntegrationError`` (``integrations.errors``): ``permanent`` (record it,
never retry) or transient (retry with backoff), ``throttled`` for a 429 with its ``retry_after``.

Nothing here decides whether a message may go: only ``comms.campaigns.sending`` hands messages to
a provider, after the sender lock and the gate. This module knows no vendor by name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar, Literal

from django.conf import settings
from django.utils.module_loading import import_string

from comms.campaigns.models import Campaign
from integrations.errors import IntegrationError

__all__ = [
    "IntegrationError",
    "MessageResult",
    "MessageSender",
    "OutboundMessage",
    "Propagation",
    "Provider",
    "SegmentSender",
    "SegmentState",
    "get",
    "registered",
]

Channel = Literal["sms", "email"]
ResultStatus = Literal["accepted", "rejected"]


@dataclass(frozen=True)
class OutboundMessage:
    """One SMS or email to hand over; ``external_id`` is our idempotency key: a provider treats a
    message repeated with the same key as the one it already has (so a retry never sends twice)."""

    external_id: str
    channel: Channel
    to: str
    sender: str
    text: str
    subject: str | None = None
    html: str | None = None
    headers: dict[str, str] | None = None
    callback_url: str | None = None
    tags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The message's wire shape; optional fields left unset are omitted."""
        data: dict[str, Any] = {
            "external_id": self.external_id,
            "channel": self.channel,
            "to": self.to,
            "sender": self.sender,
            "text": self.text,
        }
        optional: dict[str, Any] = {
            "subject": self.subject,
            "html": self.html,
            "headers": self.headers,
            "callback_url": self.callback_url,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        data["tags"] = list(self.tags)
        return data


@dataclass(frozen=True)
class MessageResult:
    """The provider's verdict on one message of a batch."""

    external_id: str
    provider_id: str | None
    status: ResultStatus
    error_code: str | None


@dataclass(frozen=True)
class Propagation:
    """What an erasure asks of one provider: ``status`` is ``nothing_to_do``, ``not_configured``
    or ``unsubscribe_queued``; ``note`` says why, for the person and the DPO."""

    provider: str
    status: str
    note: str


@dataclass(frozen=True)
class SegmentState:
    """Where a segment send stands, from the provider's record of it (``None`` fields: not yet)."""

    built: bool = False  # the segment exists: the snapshot is not taken again
    sent_at: dt.datetime | None = None
    failing_since: dt.datetime | None = None
    attempts: int = 0
    last_error: str = ""


class Provider:
    """A provider by its ``name``. Subclasses add capabilities (below) and say what they hold."""

    name: ClassVar[str]
    label: ClassVar[str]  # as people write it, in messages and errors
    urls: ClassVar[str | None] = None  # URLconf of its callbacks, mounted at hooks/<name>/

    def configured(self) -> bool:
        """Whether the settings name this provider's account (else nothing is sent to it)."""
        raise NotImplementedError

    def holdings(self, *, contact_id: int) -> dict[str, object]:
        """What the provider keeps of one person, for the rights export."""
        raise NotImplementedError

    def erasure(self) -> Propagation:
        """What an erasure asks of this provider."""
        raise NotImplementedError


class MessageSender(Provider):
    """Sends messages one by one, in batches of at most ``max_batch``."""

    max_batch: ClassVar[int] = 1000

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[MessageResult]:
        """Hand one batch over; raises ``IntegrationError``. Safe to repeat with the same keys."""
        raise NotImplementedError


class SegmentSender(Provider):
    """Sends a campaign to a segment of its own audience. Every step is safe to repeat: the
    provider keeps the ids it created (and the evidence) in its own record of the send."""

    # The actor that runs a segment send (through the hand-off): its name and queue stay put.
    send_actor: ClassVar[str]

    def segment_problem(self, campaign: Campaign) -> str | None:
        """Why this campaign cannot be sent at all (e.g. its brand has no audience), or None."""
        raise NotImplementedError

    def segment_state(self, campaign: Campaign) -> SegmentState | None:
        """The record of this campaign's send, or None before its first snapshot."""
        raise NotImplementedError

    def segment_snapshot(self, campaign: Campaign, *, snapshot_at: dt.datetime, members: list[list[Any]]) -> None:
        """Keep the snapshot as evidence: when, and which (delivery id, address key) were allowed."""
        raise NotImplementedError

    def segment_build(self, campaign: Campaign, addresses: list[str]) -> None:
        """Make sure the audience has ``addresses``, a segment of exactly them exists and the
        campaign with its content is created for it (reusing whatever a previous try created)."""
        raise NotImplementedError

    def segment_send(self, campaign: Campaign, *, remove: list[str]) -> str:
        """Take ``remove`` out of the segment, then send; returns the provider's campaign id."""
        raise NotImplementedError

    def segment_sent(
        self, campaign: Campaign, *, removed: list[list[Any]], final_diff_at: dt.datetime, sent_at: dt.datetime
    ) -> None:
        """Keep the final diff (delivery id, address key, reason of each removal) as evidence."""
        raise NotImplementedError

    def segment_failed(self, campaign: Campaign, *, error: str | None, at: dt.datetime) -> SegmentState:
        """Record a transient failure (``error`` None: held back by an open circuit, no attempt
        made): the first failure starts the send's retry window. Returns the state after it."""
        raise NotImplementedError

    def segment_retry(self, campaign: Campaign) -> None:
        """A marketer retries the failed send: a fresh retry window, the ids reused."""
        raise NotImplementedError


# --- the registry -----------------------------------------------------------------------------


@cache
def _provider(path: str) -> Provider:
    provider = import_string(path)()
    if not isinstance(provider, Provider):
        raise TypeError(f"{path} is not a Provider")
    return provider


def get(name: str) -> Provider:
    """The provider called ``name`` (``settings.PROVIDERS``); a permanent ``IntegrationError``
    for a name no setting names, so a campaign of it fails instead of being retried."""
    path = settings.PROVIDERS.get(name)
    if path is None:
        raise IntegrationError(f"no provider {name!r} (settings.PROVIDERS)", permanent=True)
    return _provider(path)


def registered() -> list[Provider]:
    """Every provider, in the order of ``settings.PROVIDERS``."""
    return [_provider(path) for path in settings.PROVIDERS.values()]
