"""Campaign actors: thin, idempotent, ids only."""

from __future__ import annotations

import dramatiq
from dramatiq.middleware.time_limit import TimeLimitExceeded
from dramatiq_crontab import cron

from comms.campaigns import previews, sending, services
from comms.campaigns.followups import services as followups


@dramatiq.actor(max_retries=3, queue_name="campaigns")
def start_campaign(campaign_id: int) -> None:
    services.campaign_start(campaign_id=campaign_id)


# The budget of a failing message is time (COMMS_SEND_RETRY_WINDOW, kept on its row), not the
# broker's retry count: an open circuit may hold a batch for hours, so the count never runs out.
UNLIMITED_RETRIES = 1_000_000


@dramatiq.actor(
    max_retries=UNLIMITED_RETRIES, min_backoff=2000, max_backoff=300_000, queue_name="send", time_limit=120_000
)
def send_deliveries(delivery_ids: list[int]) -> None:
    try:
        sending.deliveries_send(delivery_ids=delivery_ids)
    except sending.RetryLater as exc:
        # The delay is the backoff, a 429's Retry-After or the circuit's next probe.
        raise dramatiq.Retry(str(exc), delay=exc.delay_ms) from exc


@cron("* * * * *")
@dramatiq.actor(max_retries=0, queue_name="campaigns")
def campaigns_tick() -> None:
    services.campaigns_tick()
    previews.audience_previews_sweep()


@cron("*/5 * * * *")
@dramatiq.actor(max_retries=0, queue_name="campaigns")
def followups_tick() -> None:
    """Plan lapsed members' follow-ups and record stops; campaigns_tick sends the due ones."""
    followups.followups_tick()


# --- audience previews too large to decide inside a web request ----------------------------

PREVIEW_TIME_LIMIT_MS = 30 * 60 * 1000


@dramatiq.actor(max_retries=3, min_backoff=5000, queue_name="campaigns", time_limit=PREVIEW_TIME_LIMIT_MS)
def run_audience_preview(preview_id: int) -> None:
    """A failed run is recorded on the preview, not retried; see comms.campaigns.previews."""
    try:
        previews.audience_preview_run(preview_id=preview_id)
    except TimeLimitExceeded:
        previews.audience_preview_fail(
            preview_id=preview_id,
            error=f"stopped after the time limit of {PREVIEW_TIME_LIMIT_MS // 60_000} minutes",
        )
