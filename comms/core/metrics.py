"""Prometheus metrics.

Two kinds:

- in-process counters and histograms (gate decisions and latency, provider errors), cheap to update
  on the hot path. With several processes per machine, set ``PROMETHEUS_MULTIPROC_DIR`` so the
  processes share them (prometheus-client's multiprocess mode);
- figures read from the database and the broker at scrape time (messages by status and reason,
  queue depth, withdrawal-to-effect time): right whichever process answers the scrape, and
  cached for ``COMMS_METRICS_CACHE_SECONDS`` so a busy scraper cannot load the database. Those
  read the apps' tables, so they live above the apps, in ``comms.ops.scrape``; this module,
  which every layer updates, imports none of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram

logger = logging.getLogger(__name__)

GATE_DECISIONS = Counter(
    "comms_gate_decisions",
    "Gate decisions, by channel, outcome and reason (live checks only).",
    ["channel", "allowed", "reason"],
)
GATE_LATENCY = Histogram(
    "comms_gate_check_seconds",
    "Time for one gate call (check_many: one query set for a whole batch).",
    ["channel"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
PROVIDER_ERRORS = Counter(
    "comms_provider_errors",
    "Errors from message providers, by provider and kind (transient or permanent).",
    ["provider", "kind"],
)

CIRCUIT_TRANSITIONS = Counter(
    "comms_provider_circuit_transitions",
    "Circuit breaker changes per provider: to=open (sending paused) or to=closed (resumed).",
    ["provider", "to"],
)
PROVIDER_THROTTLED = Counter(
    "comms_provider_throttled",
    "429 answers per provider (each pauses its senders and halves the shared rate).",
    ["provider"],
)


def gate_observed(channel: str, decisions: Iterable[Any], seconds: float) -> None:
    """Record one live gate call (``decisions``: the Decision objects it returned)."""
    try:
        GATE_LATENCY.labels(channel=channel).observe(seconds)
        for decision in decisions:
            reason = str(decision.reason).split(":", 1)[0]  # suppressed:<why> -> suppressed
            GATE_DECISIONS.labels(
                channel=channel, allowed=str(bool(decision.allowed)).lower(), reason=reason
            ).inc()
    except Exception:  # metrics never break a send
        logger.exception("could not record gate metrics")


def provider_error(provider: str, *, permanent: bool) -> None:
    PROVIDER_ERRORS.labels(
        provider=provider or "unknown", kind="permanent" if permanent else "transient"
    ).inc()


def circuit_transition(provider: str, to: str) -> None:
    CIRCUIT_TRANSITIONS.labels(provider=provider, to=to).inc()


def provider_throttled(provider: str) -> None:
    PROVIDER_THROTTLED.labels(provider=provider).inc()
