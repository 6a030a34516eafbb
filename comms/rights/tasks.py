"""Rights actors: thin, idempotent, ids only."""

from __future__ import annotations

import dramatiq
from dramatiq_crontab import cron

from comms.rights import services
from integrations.errors import IntegrationError


@dramatiq.actor(
    max_retries=50,
    min_backoff=5000,
    max_backoff=3_600_000,
    queue_name="default",
    throws=(IntegrationError,),  # permanent: recorded by the provider adapter, not retried
)
def propagate_erasure(contact_id: int) -> None:
    """After an erasure commits: ask each provider to forget the person. A transient provider
    error (``IntegrationError``) is retried with backoff until it succeeds."""
    try:
        services.erasure_propagation_run(contact_id=contact_id)
    except IntegrationError as exc:
        if exc.permanent:
            raise
        raise dramatiq.Retry(exc.message, delay=int((exc.retry_after or 5) * 1000)) from exc


@cron("41 3 * * *")
@dramatiq.actor(max_retries=0, queue_name="default", time_limit=3_600_000)
def retention_run() -> None:
    """Nightly: erase guests past their retention and drop old evidence IPs (reported in the log
    and the rights audit log)."""
    services.retention_run()
