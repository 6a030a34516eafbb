"""How comms treats a provider that is down or throttling: one state per provider, shared by
every worker process and machine (on Redis; in-process without ``REDIS_URL``).

- **Circuit breaker.** ``PROVIDER_BREAKER_FAILURES`` transient failures in a row (5xx, timeouts,
  no connection) open it. While it is open nothing is handed to that provider; every
  ``PROVIDER_PROBE_INTERVAL`` one caller is let through as the probe (a real hand-off, after the
  gate as always). The first answer closes it again; a failed probe keeps it open.
- **Throttle.** A 429 pauses every sender of that provider for its ``Retry-After`` and halves the
  shared rate for ``PROVIDER_THROTTLE_RECOVERY`` (each further 429 halves it again, down to a
  tenth of the full rate; the recovery period restarts with every 429). A 429 is not
  a failure: it neither opens the circuit nor uses up any message's retry window.
- **Rate limit.** At most ``PROVIDER_RATE_LIMITS[provider]`` hand-off requests per second across
  all workers: dramatiq's ``WindowRateLimiter`` on the same Redis.

Callers ask ``admit(provider)`` right before a hand-off (it raises ``Held`` with how long to
wait) and report the answer with ``record_success`` / ``record_failure`` / ``record_throttle``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings

from comms.core.metrics import circuit_transition, provider_throttled

logger = logging.getLogger(__name__)

_RATE_WAIT_S = 1.0  # how long admit() waits for a rate slot before holding the caller back
_FAILURE_MEMORY_S = 600  # failures further apart than this do not add up to an open circuit


class Held(Exception):
    """The provider may not be called now; try again after ``delay_s`` seconds. ``reason`` is
    ``provider_unavailable`` (open circuit), ``throttled`` (a 429's pause) or ``rate_limited``."""

    def __init__(self, provider: str, reason: str, delay_s: float, since: float | None = None) -> None:
        super().__init__(f"{provider} {reason.replace('_', ' ')}: retry in {delay_s:.2f}s")
        self.provider = provider
        self.reason = reason
        self.delay_s = delay_s
        self.since = since


@dataclass(frozen=True)
class ProviderState:
    provider: str
    open_since: float | None  # unix time the circuit opened; None when closed
    next_probe_at: float | None
    failures: int
    throttled_until: float | None
    rate: int  # requests per second allowed now
    full_rate: int

    @property
    def available(self) -> bool:
        return self.open_since is None


def jitter(seconds: float) -> float:
    """``seconds`` spread over [0.5, 1.0] × itself ("equal jitter"), so retries do not stampede."""
    return seconds / 2 + random.uniform(0, seconds / 2)


def backoff(failures: int) -> float:
    """Seconds before retry number ``failures`` (1, 2, …): exponential from SEND_BACKOFF_MIN to
    SEND_BACKOFF_MAX, with jitter."""
    base = settings.SEND_BACKOFF_MIN * 2 ** min(max(failures, 1) - 1, 30)
    return jitter(min(base, settings.SEND_BACKOFF_MAX))


# --- where the state lives ------------------------------------------------------------------


class _Store(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str, *, ttl_s: float | None = None, only_new: bool = False) -> bool: ...
    def incr(self, key: str, *, ttl_s: float) -> int: ...
    def delete(self, *keys: str) -> None: ...
    def clear(self, prefix: str) -> None: ...


class _RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)

    def get(self, key: str) -> str | None:
        value = self.client.get(key)
        return None if value is None else str(value)

    def set(self, key: str, value: str, *, ttl_s: float | None = None, only_new: bool = False) -> bool:
        px = max(int(ttl_s * 1000), 1) if ttl_s is not None else None
        return bool(self.client.set(key, value, px=px, nx=only_new))

    def incr(self, key: str, *, ttl_s: float) -> int:
        pipe = self.client.pipeline()
        pipe.incr(key)
        pipe.pexpire(key, max(int(ttl_s * 1000), 1))
        count, _ = pipe.execute()
        return int(count)

    def delete(self, *keys: str) -> None:
        if keys:
            self.client.delete(*keys)

    def clear(self, prefix: str) -> None:
        keys = list(self.client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            self.client.delete(*keys)


class _MemoryStore:
    """One process only: the zero-setup run (no Redis), where there is one worker anyway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[str, float | None]] = {}

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            del self._data[key]
            return None
        return item[0]

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._live(key)

    def set(self, key: str, value: str, *, ttl_s: float | None = None, only_new: bool = False) -> bool:
        with self._lock:
            if only_new and self._live(key) is not None:
                return False
            self._data[key] = (value, None if ttl_s is None else time.monotonic() + ttl_s)
            return True

    def incr(self, key: str, *, ttl_s: float) -> int:
        with self._lock:
            count = int(self._live(key) or 0) + 1
            self._data[key] = (str(count), time.monotonic() + ttl_s)
            return count

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def clear(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._data if k.startswith(prefix)]:
                del self._data[key]


_stores: dict[str, Any] = {}
_stores_lock = threading.Lock()


def _store() -> _Store:
    url = settings.REDIS_URL or ""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _RedisStore(url) if url else _MemoryStore()
            _stores[url] = store
        return store


_rate_backends: dict[str, Any] = {}


def _rate_backend() -> Any:
    url = settings.REDIS_URL or ""
    with _stores_lock:
        backend = _rate_backends.get(url)
        if backend is None:
            from dramatiq.rate_limits.backends import RedisBackend, StubBackend

            backend = RedisBackend(url=url) if url else StubBackend()  # type: ignore[no-untyped-call]
            _rate_backends[url] = backend
        return backend


def _prefix() -> str:
    return f"comms:{settings.COMMS_ENV}:provider:"


def _key(provider: str, name: str) -> str:
    return f"{_prefix()}{provider}:{name}"


def _float(value: str | None) -> float | None:
    return None if value is None else float(value)


# --- reading --------------------------------------------------------------------------------


def full_rate(provider: str) -> int:
    return int(settings.PROVIDER_RATE_LIMITS.get(provider, 50))


def current_rate(provider: str) -> int:
    reduced = _store().get(_key(provider, "rate"))
    return int(reduced) if reduced is not None else full_rate(provider)


def state(provider: str) -> ProviderState:
    store = _store()
    now = time.time()
    throttled = _float(store.get(_key(provider, "throttled_until")))
    return ProviderState(
        provider=provider,
        open_since=_float(store.get(_key(provider, "open_since"))),
        next_probe_at=_float(store.get(_key(provider, "probe_at"))),
        failures=int(store.get(_key(provider, "failures")) or 0),
        throttled_until=throttled if throttled is not None and throttled > now else None,
        rate=current_rate(provider),
        full_rate=full_rate(provider),
    )


# --- asking before a hand-off ---------------------------------------------------------------


def admit(provider: str, *, wait: bool = True) -> bool:
    """May ``provider`` be called now? Returns True when this call is the open circuit's probe,
    False for an ordinary call; raises ``Held`` when the caller must wait. Waits up to a second
    for a rate slot when ``wait``."""
    store = _store()
    now = time.time()
    throttled_until = _float(store.get(_key(provider, "throttled_until")))
    if throttled_until is not None and throttled_until > now:
        raise Held(provider, "throttled", jitter(throttled_until - now) + (throttled_until - now) / 2)
    probe = False
    open_since = _float(store.get(_key(provider, "open_since")))
    if open_since is not None:
        probe_at = _float(store.get(_key(provider, "probe_at"))) or now
        interval = settings.PROVIDER_PROBE_INTERVAL
        if probe_at > now or not store.set(
            _key(provider, "probe_claim"), str(now), ttl_s=interval, only_new=True
        ):
            wake = max(probe_at - now, 0.0) + interval * random.uniform(0.05, 0.25)
            raise Held(provider, "provider_unavailable", wake, since=open_since)
        probe = True
        logger.info("provider %s: probing after an outage of %.0fs", provider, now - open_since)
    _take_rate_slot(provider, wait=wait)
    return probe


def _take_rate_slot(provider: str, *, wait: bool) -> None:
    from dramatiq.rate_limits import WindowRateLimiter

    limiter = WindowRateLimiter(  # type: ignore[no-untyped-call]
        _rate_backend(), _key(provider, "requests"), limit=current_rate(provider), window=1
    )
    deadline = time.monotonic() + (_RATE_WAIT_S if wait else 0.0)
    while True:
        with limiter.acquire(raise_on_failure=False) as acquired:
            if acquired:
                return
        if time.monotonic() >= deadline:
            raise Held(provider, "rate_limited", jitter(1.0))
        time.sleep(random.uniform(0.02, 0.08))


# --- reporting the answer -------------------------------------------------------------------


def record_success(provider: str) -> bool:
    """The provider answered (any answer that is not a transient failure). Closes an open
    circuit; returns True when this call closed it."""
    store = _store()
    open_since = _float(store.get(_key(provider, "open_since")))
    if store.get(_key(provider, "failures")) is not None:
        store.delete(_key(provider, "failures"))
    if open_since is None:
        return False
    store.delete(_key(provider, "open_since"), _key(provider, "probe_at"), _key(provider, "probe_claim"))
    outage = time.time() - open_since
    logger.warning("provider %s answers again: circuit closed after %.0fs, sending resumes", provider, outage)
    _metric_transition(provider, "closed")
    return True


def record_failure(provider: str) -> bool:
    """A transient failure (5xx, timeout, no connection). Returns True when the circuit is open
    after it (a failed probe keeps it open and schedules the next one)."""
    store = _store()
    now = time.time()
    failures = store.incr(_key(provider, "failures"), ttl_s=_FAILURE_MEMORY_S)
    already_open = store.get(_key(provider, "open_since")) is not None
    if not already_open and failures < settings.PROVIDER_BREAKER_FAILURES:
        return False
    store.set(_key(provider, "probe_at"), str(now + settings.PROVIDER_PROBE_INTERVAL))
    store.delete(_key(provider, "probe_claim"))
    if store.set(_key(provider, "open_since"), str(now), only_new=True):
        logger.warning(
            "provider %s unavailable: circuit opened after %d transient failures in a row; "
            "sending to it is paused, probing every %gs",
            provider,
            failures,
            settings.PROVIDER_PROBE_INTERVAL,
        )
        _metric_transition(provider, "open")
    return True


def record_throttle(provider: str, retry_after: float | None) -> float:
    """A 429: pause every sender of the provider for ``retry_after`` seconds (1 s if it gave
    none) and halve the shared rate. Returns the pause."""
    store = _store()
    now = time.time()
    pause = max(float(retry_after or 1.0), 0.05)
    current = _float(store.get(_key(provider, "throttled_until"))) or 0.0
    if now + pause > current:
        store.set(_key(provider, "throttled_until"), str(now + pause), ttl_s=pause + 1)
    # Halve the rate, but not below a tenth of the full rate: the 429s of one storm arrive from
    # many senders at once, and each must not halve it again down to nothing.
    floor = max(1, full_rate(provider) // 10)
    rate = max(floor, current_rate(provider) // 2)
    store.set(_key(provider, "rate"), str(rate), ttl_s=settings.PROVIDER_THROTTLE_RECOVERY)
    logger.info("provider %s throttled (429): pausing %.2fs, rate now %d requests/s", provider, pause, rate)
    _metric_throttle(provider)
    return pause


def reset(provider: str | None = None) -> None:
    """Forget every provider's state (tests, and `manage.py` after an incident)."""
    _store().clear(_prefix() if provider is None else f"{_prefix()}{provider}:")


def _metric_transition(provider: str, to: str) -> None:
    try:
        circuit_transition(provider, to)
    except Exception:  # metrics never break a send
        logger.exception("could not record the circuit metric")


def _metric_throttle(provider: str) -> None:
    try:
        provider_throttled(provider)
    except Exception:
        logger.exception("could not record the throttle metric")
