"""What every benchmark records and prints alike: the machine it ran on, a CPU probe, the log line
and the result table."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Other work on the machine skews every number: the load when the benchmark began (on import).
LOAD_AT_START = [round(x, 2) for x in os.getloadavg()]


def logger(prefix: str) -> Callable[[str], None]:
    """A progress line on stderr: ``[prefix HH:MM:SSZ] message``."""

    def log(message: str) -> None:
        print(f"[{prefix} {time.strftime('%H:%M:%S', time.gmtime())}Z] {message}", file=sys.stderr, flush=True)

    return log


def host() -> dict[str, Any]:
    """The machine: CPU model, cores, memory, OS, Python, the date, and the load at start and now."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    memory = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": LOAD_AT_START,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def postgres_version(connection: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0])


def cpu_probe() -> float:
    """Seconds one core takes for a fixed piece of Python work (hashing and JSON, as an append
    does). On a shared virtual machine the same code runs up to a third slower from one hour to
    the next; the probe, taken at the start and the end, tells runs on a fast or a slow machine
    apart (lower is faster)."""
    began = time.perf_counter()
    payload = {"chain": 1, "seq": 0, "address_key": "ab" * 32, "action": "grant", "recorded_by": "bench"}
    for n in range(100_000):
        payload["seq"] = n
        hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return round(time.perf_counter() - began, 3)


def table(rows: list[tuple[str, Any]]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def fresh_database(admin_dsn: str, name: str) -> None:
    """Drop the benchmark's database (closing its sessions) and create it empty."""
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")


def flush_redis(url: str) -> None:
    """Empty the benchmark's Redis database."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    client.flushdb()
    client.close()
