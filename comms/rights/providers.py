"""What each provider holds about a person, and how an erasure reaches it: asked of every provider
in the registry (``comms.campaigns.providers``), each of which says it for itself
(``integrations/<vendor>/provider.py``: LifeVision keeps no audience, so an erasure needs no
call; Mailchimp's member is set ``unsubscribed`` by its ledger listener, never deleted)."""

from __future__ import annotations

from comms.campaigns import providers
from comms.campaigns.providers import Propagation

__all__ = ["Propagation", "erasure_plan", "erasure_propagate", "propagation_status"]


def propagation_status(*, contact_id: int) -> dict[str, dict[str, object]]:
    """Per provider: whether it is configured, what it holds of the person, what erasure does."""
    return {provider.name: provider.holdings(contact_id=contact_id) for provider in providers.registered()}


def erasure_plan() -> list[Propagation]:
    """What an erasure asks of each provider (shown in the erasure's answer)."""
    return [provider.erasure() for provider in providers.registered()]


def erasure_propagate(*, contact_id: int) -> list[Propagation]:
    """Ask each provider to forget the person where that keeps their suppression. Idempotent;
    a transient failure raises ``IntegrationError`` and the actor retries. No provider needs a
    call today: LifeVision keeps nothing to forget, and Mailchimp's unsubscribe was queued by
    its ledger listener with the erase event (it retries on its own), so this reports."""
    return erasure_plan()
