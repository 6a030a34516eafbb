"""Mailchimp actors: thin, idempotent, ids only. The unsubscribe push runs first on its own
queue and is retried (with backoff) until Mailchimp has it."""

from __future__ import annotations

import dramatiq
from dramatiq_crontab import cron

from comms.campaigns import sending
from integrations.mailchimp import sync, webhooks
from integrations.mailchimp.client import MailchimpError


@dramatiq.actor(
    queue_name="mailchimp",
    priority=0,
    max_retries=10_000,
    min_backoff=500,
    max_backoff=300_000,
    time_limit=60_000,
)
def mailchimp_unsubscribe(row_id: int) -> None:
    """Never gives up: a refused member is recorded as failed, anything else is retried (after
    a 429's Retry-After, or the next probe of an open circuit, when Mailchimp says when)."""
    try:
        sync.unsubscribe_push(row_id=row_id)
    except MailchimpError as exc:
        if exc.retry_after is None:
            raise
        raise dramatiq.Retry(exc.message, delay=max(int(exc.retry_after * 1000), 1)) from exc


@dramatiq.actor(
    queue_name="mailchimp",
    priority=5,
    max_retries=20,
    min_backoff=2000,
    max_backoff=300_000,
    time_limit=60_000,
)
def mailchimp_member_sync(contact_id: int, purpose_id: int) -> None:
    sync.member_sync(contact_id=contact_id, purpose_id=purpose_id)


@dramatiq.actor(
    queue_name="mailchimp",
    priority=10,
    max_retries=1_000_000,  # the budget is the time window, kept on CampaignSend
    min_backoff=2000,
    max_backoff=300_000,
    time_limit=600_000,
)
def mailchimp_send_campaign(campaign_id: int) -> None:
    """A campaign to a segment of the brand's audience, through the hand-off (the gate, twice)."""
    try:
        sending.segment_send(campaign_id=campaign_id)
    except sending.RetryLater as exc:
        # The send fails for good COMMS_SEND_RETRY_WINDOW after its first failure.
        raise dramatiq.Retry(str(exc), delay=exc.delay_ms) from exc


@dramatiq.actor(
    queue_name="mailchimp",
    priority=5,
    max_retries=10,
    min_backoff=1000,
    max_backoff=60_000,
    time_limit=60_000,
)
def mailchimp_webhook(receipt_id: int) -> None:
    webhooks.webhook_process(receipt_id=receipt_id)


@cron("* * * * *")
@dramatiq.actor(queue_name="mailchimp", max_retries=0)
def mailchimp_sweep() -> None:
    """Re-enqueue unsubscribe pushes and webhooks whose messages the broker may have lost."""
    sync.unsubscribe_sweep()
    webhooks.webhooks_sweep()


@cron("17 3 * * *")
@dramatiq.actor(queue_name="mailchimp", max_retries=3, min_backoff=60_000, throws=(MailchimpError,))
def mailchimp_reconcile() -> None:
    sync.reconcile()
