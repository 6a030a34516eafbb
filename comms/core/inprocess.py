"""The zero-configuration run's in-process worker and scheduler (no Redis, no extra processes).

Production runs `manage.py rundramatiq` workers and one `manage.py crontab` scheduler instead.
"""

from __future__ import annotations

import importlib
import logging
import threading

import dramatiq
from django.apps import apps
from dramatiq import Worker

logger = logging.getLogger(__name__)


def load_task_modules() -> None:
    """Import every app's tasks module, which registers its actors and cron schedules."""
    for config in apps.get_app_configs():
        if config.name.startswith("comms") or config.name.startswith("integrations"):
            try:
                importlib.import_module(f"{config.name}.tasks")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.tasks":
                    raise


def start_worker(threads: int = 4) -> Worker:
    worker = Worker(dramatiq.get_broker(), worker_threads=threads, worker_timeout=200)
    worker.start()
    logger.info("in-process dramatiq worker started with %d threads", threads)
    return worker


def start_scheduler() -> threading.Thread:
    from dramatiq_crontab import scheduler

    thread = threading.Thread(target=scheduler.start, name="comms-scheduler", daemon=True)
    thread.start()
    logger.info("in-process scheduler started with %d job(s)", len(scheduler.get_jobs()))
    return thread
