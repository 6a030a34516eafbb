"""Member-page actors: thin, idempotent, ids only."""

from __future__ import annotations

import dramatiq
from dramatiq_crontab import cron

from comms.campaigns.sending import RetryLater
from comms.campaigns.tasks import UNLIMITED_RETRIES
from comms.web import messages, services


@dramatiq.actor(
    max_retries=UNLIMITED_RETRIES, min_backoff=2000, max_backoff=300_000, queue_name="callbacks", time_limit=60_000
)
def send_member_message(message_id: int) -> None:
    try:
        messages.member_message_send(message_id=message_id)
    except RetryLater as exc:
        # The message fails for good COMMS_SEND_RETRY_WINDOW after it was created.
        raise dramatiq.Retry(str(exc), delay=exc.delay_ms) from exc


@cron("* * * * *")
@dramatiq.actor(max_retries=0, queue_name="callbacks")
def member_messages_sweep() -> None:
    services.member_messages_sweep()
