"""What each provider holds about a person, and how an erasure reaches it.

- LifeVision keeps no audience of ours: every message is handed over once, with the address in
  it, and what LifeVision keeps of sent messages is its own record under the processor
  agreement. Its API (shared/LIFEVISION_API.md) has no call to forget a recipient, so an
  erasure needs no call; the export lists the provider ids and statuses of the person's
  messages. Future sends are impossible anyway: the addresses are suppressed by keyed hash.
- Mailchimp (``integrations/mailchimp``, when ``MAILCHIMP_API_KEY`` is set): the ledger's
  ``erase`` event is pushed by the Mailchimp listener like a withdrawal — the member is set
  ``unsubscribed`` in the brand's audience (never permanently deleted, which would destroy
  Mailchimp's own suppression), by a high-priority actor retried until Mailchimp has it. The
  export shows every such push with its status and times.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from comms.campaigns.models import Delivery, Provider
from integrations.mailchimp.sync import propagation_for_contact

LIFEVISION_NOTE = (
    "LifeVision keeps no audience of ours and has no call to forget a recipient: each message "
    "was handed over once. Nothing to propagate; the addresses are suppressed by keyed hash."
)
MAILCHIMP_NOTE = (
    "Mailchimp keeps the member as unsubscribed (never permanently deleted, which would destroy its "
    "own suppression); the erasure is pushed as an unsubscribe and retried until Mailchimp has it."
)
MAILCHIMP_OFF_NOTE = "not configured: Mailchimp holds nothing from comms"


@dataclass(frozen=True)
class Propagation:
    provider: str
    status: str  # "nothing_to_do", "not_configured", "done"
    note: str


def lifevision_configured() -> bool:
    return bool(settings.LIFEVISION_BASE_URL and settings.LIFEVISION_API_KEY)


def mailchimp_configured() -> bool:
    return bool(getattr(settings, "MAILCHIMP_API_KEY", None))


def propagation_status(*, contact_id: int) -> dict[str, dict[str, object]]:
    """Per provider: whether it is configured, what it holds of the person, what erasure does."""
    messages = [
        {"delivery_id": pk, "provider_id": provider_id, "status": status}
        for pk, provider_id, status in Delivery.objects.filter(
            contact_id=contact_id, campaign__provider=Provider.LIFEVISION
        )
        .exclude(provider_id="")
        .order_by("id")
        .values_list("id", "provider_id", "status")
    ]
    return {
        "lifevision": {
            "status": "configured" if lifevision_configured() else "not configured",
            "note": LIFEVISION_NOTE,
            "messages": messages,
        },
        "mailchimp": {
            "status": "configured" if mailchimp_configured() else "not configured",
            "note": MAILCHIMP_NOTE if mailchimp_configured() else MAILCHIMP_OFF_NOTE,
            "messages": [],
            "unsubscribe_pushes": propagation_for_contact(contact_id=contact_id),
        },
    }


def erasure_plan() -> list[Propagation]:
    """What an erasure asks of each provider (shown in the erasure's answer)."""
    return [
        Propagation("lifevision", "nothing_to_do", LIFEVISION_NOTE),
        Propagation("mailchimp", "unsubscribe_queued", MAILCHIMP_NOTE)
        if mailchimp_configured()
        else Propagation("mailchimp", "not_configured", MAILCHIMP_OFF_NOTE),
    ]


def erasure_propagate(*, contact_id: int) -> list[Propagation]:
    """Ask each provider to forget the person where that keeps their suppression. Idempotent;
    a transient failure raises ``IntegrationError`` and the actor retries. LifeVision needs no
    call; Mailchimp's unsubscribe was queued by its ledger listener with the erase event (it
    retries on its own), so this reports."""
    return erasure_plan()
