"""LifeVision actors: thin, idempotent, ids only. The webhook stores a receipt; these process it
once, send the reply it asks for, and sweep up what the broker may have lost."""

from __future__ import annotations

import dramatiq
from dramatiq_crontab import cron

from comms.campaigns import sending
from comms.campaigns.tasks import UNLIMITED_RETRIES
from integrations.lifevision import callbacks, inbound, reports


@dramatiq.actor(
    max_retries=10, min_backoff=1000, max_backoff=60_000, queue_name="callbacks", time_limit=60_000
)
def process_delivery_report(receipt_id: int) -> None:
    reports.delivery_report_process(receipt_id=receipt_id)


@dramatiq.actor(
    max_retries=10, min_backoff=1000, max_backoff=60_000, queue_name="callbacks", time_limit=60_000
)
def process_inbound_sms(receipt_id: int) -> None:
    inbound.inbound_sms_process(receipt_id=receipt_id)


@dramatiq.actor(
    max_retries=UNLIMITED_RETRIES, min_backoff=2000, max_backoff=300_000, queue_name="callbacks", time_limit=60_000
)
def send_reply(reply_id: int) -> None:
    try:
        sending.reply_send(reply_id=reply_id)
    except sending.RetryLater as exc:
        # The reply fails for good COMMS_SEND_RETRY_WINDOW after it was created.
        raise dramatiq.Retry(str(exc), delay=exc.delay_ms) from exc


@cron("* * * * *")
@dramatiq.actor(max_retries=0, queue_name="callbacks")
def callbacks_sweep() -> None:
    callbacks.callbacks_sweep()
