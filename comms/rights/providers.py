"""What each provider holds about a person, and how an erasure reaches it.

- LifeVision keeps no audience of ours: every message is handed over once, with the address in
  it, and what LifeVision keeps of sent messages is its own record under the processor
  agreement. Its API (shared/LIFEVISION_API.md) has no call to forget a recipient, so an
  erasure needs no call; the export lists the provider ids and statuses of the person's
  messages. Future sends are impossible anyway: the addresses are suppressed by keyed hash.
- Mailchimp: not configured until ``integrations/mailchimp/`` exists. Its erasure will set the
  member ``unsubscribed`` (never a permanent delete, which would destroy Mailchimp's own
  suppression) and remove the merge fields; it belongs in ``erasure_propagate`` below, retried
  by the actor until it succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from comms.campaigns.models import Delivery, Provider

LIFEVISION_NOTE = (
    "LifeVision keeps no audience of ours and has no call to forget a recipient: each message "
    "was handed over once. Nothing to propagate; the addresses are suppressed by keyed hash."
)
MAILCHIMP_NOTE = "not configured: comms has no Mailchimp integration yet, so Mailchimp holds nothing from it"


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
            "note": MAILCHIMP_NOTE,
            "messages": [],
        },
    }


def erasure_plan() -> list[Propagation]:
    """What an erasure asks of each provider (shown in the erasure's answer)."""
    return [
        Propagation("lifevision", "nothing_to_do", LIFEVISION_NOTE),
        Propagation("mailchimp", "not_configured", MAILCHIMP_NOTE),
    ]


def erasure_propagate(*, contact_id: int) -> list[Propagation]:
    """Ask each provider to forget the person where that keeps their suppression. Idempotent;
    a transient failure raises ``IntegrationError`` and the actor retries. LifeVision needs no
    call and Mailchimp is not configured, so today this only reports."""
    return erasure_plan()
