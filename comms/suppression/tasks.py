"""Periodic ledger work. Actors are thin: they call one service."""

from __future__ import annotations

import dramatiq
from dramatiq_crontab import cron

from comms.suppression import services


@cron("17 * * * *")
@dramatiq.actor(max_retries=3, queue_name="default")
def ledger_checkpoint() -> None:
    services.ledger_checkpoint()
