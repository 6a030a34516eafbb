"""Prometheus figures read at scrape time from the database, the broker and the providers' shared
health (see ``comms.core.metrics`` for the counters): messages by status and reason, queue
depth, withdrawal-to-effect time, each provider's circuit and rate. Cached for
``COMMS_METRICS_CACHE_SECONDS`` so a busy scraper cannot load the database."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Sum
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

from comms.campaigns.models import Delivery
from comms.suppression.models import Action, ConsentEvent
from integrations import health

logger = logging.getLogger(__name__)

_CACHE_KEY = "comms:metrics:db"


def _db_figures() -> dict[str, Any]:
    messages = [
        (row["channel"], row["status"], row["reason"] or "", row["n"])
        for row in Delivery.objects.values("channel", "status", "reason").annotate(n=Count("id")).order_by()
    ]
    since = timezone.now() - timedelta(hours=24)
    lag = ExpressionWrapper(F("recorded_at") - F("occurred_at"), output_field=DurationField())
    withdrawals = ConsentEvent.objects.filter(action=Action.WITHDRAW, recorded_at__gte=since).aggregate(
        n=Count("id"), total=Sum(lag), worst=Max(lag)
    )
    total = withdrawals["total"] or timedelta(0)
    worst = withdrawals["worst"] or timedelta(0)
    return {
        "messages": messages,
        "withdrawals": (
            withdrawals["n"] or 0,
            max(total.total_seconds(), 0.0),
            max(worst.total_seconds(), 0.0),
        ),
    }


def _broker_depth() -> dict[str, int]:
    """Messages waiting (or in flight) per dramatiq queue, read from Redis; empty without Redis."""
    url = settings.REDIS_URL
    if not url:
        return {}
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    depth: dict[str, int] = {}
    for raw in client.scan_iter(match="dramatiq:*.msgs", count=100):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        queue = key[len("dramatiq:") : -len(".msgs")]
        depth[queue] = int(client.hlen(key))
    return depth


class DatabaseCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        figures: Mapping[str, Any] | None = cache.get(_CACHE_KEY)
        if figures is None:
            try:
                figures = _db_figures()
            except Exception:
                logger.exception("metrics: could not read the database")
                figures = {"messages": [], "withdrawals": (0, 0.0, 0.0), "error": True}
            cache.set(_CACHE_KEY, figures, settings.METRICS_CACHE_SECONDS)
        messages = GaugeMetricFamily(
            "comms_messages",
            "Campaign messages by channel, status and reason.",
            labels=["channel", "status", "reason"],
        )
        queued = 0
        for channel, status, reason, n in figures["messages"]:
            messages.add_metric([channel, status, reason], n)
            if status == "queued":
                queued += n
        yield messages
        count, total, worst = figures["withdrawals"]
        yield GaugeMetricFamily(
            "comms_withdrawals_24h", "Withdrawals recorded in the last 24 hours.", value=count
        )
        yield GaugeMetricFamily(
            "comms_withdrawal_to_effect_seconds_avg_24h",
            "Mean time from a withdrawal (occurred_at) to its effect in the ledger (recorded_at), last 24 h.",
            value=(total / count) if count else 0.0,
        )
        yield GaugeMetricFamily(
            "comms_withdrawal_to_effect_seconds_max_24h",
            "Longest time from a withdrawal to its effect in the ledger, last 24 hours.",
            value=worst,
        )
        depth = GaugeMetricFamily(
            "comms_queue_depth",
            "Work waiting: queued deliveries, and messages per broker queue.",
            labels=["queue"],
        )
        depth.add_metric(["deliveries_queued"], queued)
        try:
            for queue, n in sorted(_broker_depth().items()):
                depth.add_metric([f"broker:{queue}"], n)
        except Exception:
            logger.warning("metrics: could not read the broker's queue depth")
        yield depth
        yield from _provider_gauges()
        yield GaugeMetricFamily(
            "comms_metrics_db_up",
            "1 if the scrape-time database figures could be read.",
            value=0 if figures.get("error") else 1,
        )


def _provider_gauges() -> Iterable[Metric]:
    """The circuit and throttle of each provider, read from the shared state (Redis)."""
    available = GaugeMetricFamily(
        "comms_provider_available",
        "1 while the provider's circuit is closed, 0 while sending to it is paused.",
        labels=["provider"],
    )
    rate = GaugeMetricFamily(
        "comms_provider_rate_limit", "Hand-off requests per second allowed now.", labels=["provider"]
    )
    try:
        for provider in sorted(settings.PROVIDER_RATE_LIMITS):
            current = health.state(provider)
            available.add_metric([provider], 1 if current.available else 0)
            rate.add_metric([provider], current.rate)
    except Exception:
        logger.warning("metrics: could not read the providers' state")
    yield available
    yield rate


def render_latest() -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(DatabaseCollector())
        return generate_latest(registry)
    registry.register(DatabaseCollector())
    return generate_latest(REGISTRY) + generate_latest(registry)
