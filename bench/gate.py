"""The gate and the ledger at member-base scale (DESIGN §8): set-based preview, per-message
check, bulk import and concurrent single appends.

One command: ``bin/bench-gate [--contacts 1000000] [--sizes 10000,100000,1000000]``
(``python -m bench.gate --help`` lists every option). Everything runs on loopback:

1. Fresh state (skipped with ``--reuse`` when the database already holds this data set): drops
   and recreates the PostgreSQL database ``comms_bench_gate`` (``BENCH_DB_NAME``; 127.0.0.1:5432, user postgres)
   and migrates. The benchmark generates its own data, in a separate (spawned) process so the
   memory the set-up needs does not count against the gate's: one brand, one email purpose,
   ``--contacts`` member contacts with distinct e-mail addresses (``bulk_create`` in batches,
   address keys set by ``Contact.refresh_address_keys()``), plus a pool of contacts without
   consents for the concurrent appends (kept out of every audience). The consents go through
   the ledger's bulk path, ``comms.suppression.services.consents_import`` (hash-chained,
   state kept, no SQL shortcut): one grant per contact, then a withdrawal (same purpose) for
   every 20th contact, 5 %. ``bulk_append_per_s`` = events / seconds of the whole import (row
   building included), with ``--import-chains`` chains and ``--import-workers`` workers
   (``consents_import`` splits the rows by chain over worker threads; 1 and 1 is the sequential
   path). Then ``ANALYZE``, as an operator's autovacuum would do after a load.
2. Preview: for each ``--sizes`` value an audience of that many contacts (the first ``size``
   contacts by id) decided by ``comms.suppression.gate.audience_counts`` (the set-based gate
   ``campaign_preview`` uses), twice; the second (warm) time is reported, with pairs/s. The
   counts must be exact: every contact allowed (``consent``) or ``withdrawn``, and withdrawn =
   the number of every-20th contacts among them.
3. Per-message check: ``--checks`` random contacts (loaded first, so only the gate is timed),
   ``gate.check`` one by one after a warm-up of 50 → p50/p99 in ms.
4. Peak RSS of this process (``ru_maxrss``) after steps 2–3 → ``peak_rss_mb``.
5. Concurrent single appends: for each ``--chains-list`` value the ledger is set to that many
   chains (``ledger_chains_set``, as ``manage.py ledger_chains --set``) and ``--concurrent-workers``
   spawned processes (each its own ``django.setup()`` and connection) start together and, for ``--concurrent-seconds``, append one event per
   transaction: ``consent_withdraw`` (self, api) alternating with ``consent_grant`` (staff,
   front desk) on the worker's own contacts of the pool. Committed events / seconds →
   ``concurrent_append_per_s`` per chain count. The target (1,000/s) is for several chains
   (DESIGN §8, #11); one chain, where every append waits for the same head lock, is measured
   for reference (``concurrent_target_met`` covers the counts above 1).
   Then (``--http-seconds``, 15; 0 skips it) the same appends through the HTTP API, on the
   largest chain count: gunicorn (``--http-workers`` sync workers, as the Procfile's web process)
   on loopback and ``--http-clients`` processes posting ``/api/v1/consents`` with a system key,
   all on the same cores → ``http_append_per_s`` (measured; the target is the service's).
6. ``ledger_verify()`` (every chain recomputed) and ``state_verify()`` (every contact refolded)
   must pass; on a million events they take minutes (progress is logged).
7. Prints a table (each target met: yes/no) and writes ``bench/results/gate.json``.

The environment: ``COMMS_ENV=development``, ``DATABASE_URL`` pointing at the database above,
``LOG_LEVEL=WARNING``, no ``REDIS_URL`` (the in-process broker: nothing here needs Redis; the
machine info asks Redis for its version only if it answers). Exit 1 if a count is wrong or a
verification fails; missed targets are reported, not failures. Every wait is bounded. Other
work on the machine skews the numbers: the load average is recorded at start and end, and so is
a CPU probe (seconds for a fixed piece of Python work), since the same shared machine runs up to
a third slower from one hour to the next with no load of its own to show for it.
Never part of the unit test suite.
Longer than 400 lines on purpose: a benchmark is read top to bottom as its procedure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.common import cpu_probe, fresh_database, host, logger, postgres_version, table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DB_NAME = os.environ.get("BENCH_DB_NAME", "comms_bench_gate")
# BENCH_PG_PORT: another PostgreSQL server on loopback (say, one tuned as for production).
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_ADMIN_DSN = f"host=127.0.0.1 port={PG_PORT} user=postgres dbname=postgres"
DATABASE_URL = f"postgres://postgres@127.0.0.1:{PG_PORT}/{DB_NAME}"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
BRAND_KEY = "benchgate"
PURPOSE_KEY = "benchgate-news"
WITHDRAW_EVERY = 20  # every 20th contact withdraws: 5 %
CONTACT_BATCH = 10_000
IMPORT_BATCH = 20_000  # rows per consents_import call, as bin/manage import_consents hands them
WARMUP_CHECKS = 50
TARGETS = {
    "preview_1m_s": ("<=", 5.0),
    "check_p99_ms": ("<=", 2.0),
    "bulk_append_per_s": (">=", 10_000),
    "concurrent_append_per_s": (">=", 1_000),
    "peak_rss_mb": ("<=", 300),
}

CPU_PROBE_AT_START: float | None = None  # set by main(), not on import (spawned workers import this)


log = logger("bench-gate")


# --- environment and fresh state -----------------------------------------------------------------


def bench_env() -> dict[str, str]:
    return {
        "COMMS_ENV": "development",
        "DJANGO_SETTINGS_MODULE": "comms.settings",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": DATABASE_URL,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def apply_env() -> None:
    os.environ.update(bench_env())
    # Nothing here goes through Redis or Mailchimp; the chain count is the shipped default
    # except where the concurrent phase sets it for its own processes.
    for name in ("REDIS_URL", "MAILCHIMP_API_KEY", "COMMS_LEDGER_CHAINS", "DATABASE_MIGRATE_URL"):
        os.environ.pop(name, None)


def reset_state() -> None:
    fresh_database(PG_ADMIN_DSN, DB_NAME)


def stored_setup() -> dict[str, Any] | None:
    """The set-up record a previous run left on the database (its comment), if any."""
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [DB_NAME]
        ).fetchone()
    if row is None or not row[0]:
        return None
    try:
        return dict(json.loads(row[0]))
    except ValueError:
        return None


def store_setup(record: dict[str, Any]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(DB_NAME), sql.Literal(json.dumps(record))
            )
        )


# --- set-up (runs in its own spawned process) ---------------------------------------------------


def email(n: int) -> str:
    return f"member{n:07d}@bench-gate.example"


def setup(contacts: int, pool: int, chains: int, workers: int) -> dict[str, Any]:
    """Fresh database, the data set and its consents through the bulk ledger path. Returns the
    timings; runs in a spawned process (its memory is not the gate's)."""
    apply_env()
    os.environ["COMMS_LEDGER_CHAINS"] = str(chains)
    os.environ["COMMS_IMPORT_WORKERS"] = str(workers)
    reset_state()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from comms.contacts.models import Brand, Contact, ContactKind
    from comms.suppression import services as ledger
    from comms.suppression.models import Action, Source

    began = time.perf_counter()
    call_command("migrate", verbosity=0)
    # As the release step does: the ledger's count of chains from COMMS_LEDGER_CHAINS.
    call_command("ledger_chains", from_settings=True, stdout=io.StringIO())
    migrate_s = time.perf_counter() - began
    log(f"migrated {DB_NAME} in {migrate_s:.1f}s")

    brand = Brand.objects.create(key=BRAND_KEY, name="BenchGate", email_from="news@bench-gate.example")
    ledger.purpose_create(
        brand=brand,
        key=PURPOSE_KEY,
        name="BenchGate news",
        channels=["email"],
        notice_text="BenchGate sends news and offers by e-mail. Use the link in every e-mail to stop.",
    )

    began = time.perf_counter()
    total = contacts + pool
    for start in range(0, total, CONTACT_BATCH):
        rows = [
            Contact(
                brand=brand,
                kind=ContactKind.MEMBER,
                external_id=f"m{i}",
                first_name="Bench",
                last_name=f"Member{i}",
                email=email(i),
            )
            for i in range(start, min(total, start + CONTACT_BATCH))
        ]
        for row in rows:
            row.refresh_address_keys()  # bulk_create skips save(), which keeps the keys
        Contact.objects.bulk_create(rows, batch_size=2000)
        if (start // CONTACT_BATCH) % 20 == 19:
            log(f"contacts: {start + len(rows)} / {total}")
    contacts_s = time.perf_counter() - began
    log(f"{total} contacts in {contacts_s:.1f}s ({total / contacts_s:.0f}/s)")

    first_id = Contact.objects.filter(brand=brand).order_by("id").values_list("id", flat=True).first()
    assert first_id is not None
    last_member_id = first_id + contacts - 1
    ids_ok = Contact.objects.filter(brand=brand, pk__lte=last_member_id).count() == contacts
    if not ids_ok:
        raise RuntimeError("contact ids are not contiguous: the audience by id range would be wrong")

    principal = ledger.Principal(actor="staff", recorded_by="bench")
    granted_at = timezone.now() - timedelta(days=30)
    withdrawn_at = timezone.now() - timedelta(days=1)
    events = 0
    errors: list[Any] = []
    began = time.perf_counter()
    last_log = began
    # Grants: one per member contact, in contact order.
    for start in range(0, contacts, IMPORT_BATCH):
        rows = [
            ledger.ConsentImportRow(
                external_key=f"g{i}",
                channel="email",
                purpose=PURPOSE_KEY,
                occurred_at=granted_at,
                contact_id=first_id + i,
                action=Action.GRANT,
                source=Source.IMPORT,
            )
            for i in range(start, min(contacts, start + IMPORT_BATCH))
        ]
        result = ledger.consents_import(rows=rows, principal=principal, start_index=start)
        events += result.created
        errors.extend(result.errors)
        if time.perf_counter() - last_log > 15:
            last_log = time.perf_counter()
            log(f"import: {events} events, {events / (last_log - began):.0f}/s")
    grants_s = time.perf_counter() - began
    # Withdrawals: every 20th contact, for the same purpose.
    withdraw_index = list(range(0, contacts, WITHDRAW_EVERY))
    for start in range(0, len(withdraw_index), IMPORT_BATCH):
        rows = [
            ledger.ConsentImportRow(
                external_key=f"w{i}",
                channel="email",
                purpose=PURPOSE_KEY,
                occurred_at=withdrawn_at,
                contact_id=first_id + i,
                action=Action.WITHDRAW,
                source=Source.IMPORT,
            )
            for i in withdraw_index[start : start + IMPORT_BATCH]
        ]
        result = ledger.consents_import(rows=rows, principal=principal, start_index=contacts + start)
        events += result.created
        errors.extend(result.errors)
    import_s = time.perf_counter() - began
    log(
        f"consents_import: {events} events in {import_s:.1f}s ({events / import_s:.0f}/s; "
        f"grants {grants_s:.1f}s, withdrawals {import_s - grants_s:.1f}s), {len(errors)} errors"
    )
    if errors:
        raise RuntimeError(f"consents_import rejected {len(errors)} rows, e.g. {errors[0]}")

    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    analyze_s = time.perf_counter() - began
    log(f"ANALYZE in {analyze_s:.1f}s")
    connection.close()
    return {
        "contacts": contacts,
        "pool": pool,
        "import_chains": chains,
        "import_workers": workers,
        "first_id": first_id,
        "migrate_s": round(migrate_s, 2),
        "contacts_s": round(contacts_s, 2),
        "import_events": events,
        "import_grants": contacts,
        "import_withdrawals": len(withdraw_index),
        "import_s": round(import_s, 2),
        "import_grants_s": round(grants_s, 2),
        "bulk_append_per_s": round(events / import_s, 1) if import_s > 0 else None,
        "analyze_s": round(analyze_s, 2),
        "setup_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "done_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def reusable(contacts: int, pool: int, chains: int, workers: int) -> dict[str, Any] | None:
    """The stored set-up, if the database holds exactly this data set."""
    try:
        record = stored_setup()
    except Exception as exc:  # no server, no database: set up afresh
        log(f"--reuse: cannot read the stored set-up ({exc}); setting up afresh")
        return None
    if not record or record.get("contacts") != contacts or record.get("pool") != pool:
        log(f"--reuse: the database does not hold {contacts} contacts + {pool} pool; setting up afresh")
        return None
    if (record.get("import_chains", 1), record.get("import_workers", 1)) != (chains, workers):
        log("--reuse: the stored import ran with other --import-chains/--import-workers; setting up afresh")
        return None
    return record


# --- preview and per-message check (this process) ------------------------------------------------


def preview(brand: Any, purpose: Any, first_id: int, size: int) -> dict[str, Any]:
    from comms.contacts.models import Contact
    from comms.suppression import gate

    audience = Contact.objects.filter(brand=brand, erased_at__isnull=True, pk__lte=first_id + size - 1).exclude(
        email__isnull=True
    )
    times = []
    counts: Any = None
    for _ in range(2):  # cold, then warm (reported)
        began = time.perf_counter()
        counts = gate.audience_counts(contacts=audience, channel="email", purpose=purpose)
        times.append(time.perf_counter() - began)
    expected_withdrawn = (size + WITHDRAW_EVERY - 1) // WITHDRAW_EVERY
    allowed = counts.get("consent", 0)
    withdrawn = counts.get("withdrawn", 0)
    correct = (
        allowed + withdrawn == size
        and sum(counts.values()) == size
        and withdrawn == expected_withdrawn
    )
    return {
        "size": size,
        "cold_s": round(times[0], 3),
        "warm_s": round(times[1], 3),
        "pairs_per_s": round(size / times[1], 1) if times[1] > 0 else None,
        "counts": dict(counts),
        "expected_withdrawn": expected_withdrawn,
        "correct": correct,
    }


def checks(purpose: Any, first_id: int, contacts: int, n: int, seed: int) -> dict[str, Any]:
    from comms.contacts.models import Contact
    from comms.suppression import gate

    rng = random.Random(seed)
    ids = [first_id + rng.randrange(contacts) for _ in range(n + WARMUP_CHECKS)]
    loaded = Contact.objects.in_bulk(set(ids))
    sample = [loaded[i] for i in ids]
    latencies: list[float] = []
    wrong = 0
    for position, contact in enumerate(sample):
        began = time.perf_counter()
        decision = gate.check(contact=contact, channel="email", purpose=purpose)
        elapsed = time.perf_counter() - began
        if position < WARMUP_CHECKS:
            continue
        latencies.append(elapsed * 1000)
        index = contact.pk - first_id
        # Fresh data set: every 20th contact withdrew; concurrent appends use other contacts.
        want = "withdrawn" if index % WITHDRAW_EVERY == 0 else "consent"
        if decision.reason != want:
            wrong += 1
    latencies.sort()
    return {
        "checks": len(latencies),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
        "max_ms": round(latencies[-1], 3),
        "wrong": wrong,
    }


# --- concurrent single appends (spawned processes) ----------------------------------------------


def _append_worker(
    number: int,
    contact_ids: list[int],
    seconds: float,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """One client: one event per transaction until the time is up; reports committed events."""
    committed = errors = 0
    first_error = ""
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection

        from comms.contacts.models import Contact
        from comms.suppression import services as ledger
        from comms.suppression.models import Purpose

        purpose = Purpose.objects.get(key=PURPOSE_KEY)
        contacts = list(Contact.objects.filter(pk__in=contact_ids).order_by("id"))
        self_principal = ledger.Principal(actor="self", recorded_by="bench")
        staff_principal = ledger.Principal(actor="staff", recorded_by="bench")
        chains = settings.LEDGER_CHAINS
        ready.wait(timeout=120)  # a barrier: every worker set up
        go.wait(timeout=120)
        deadline = time.monotonic() + seconds
        step = 0
        while time.monotonic() < deadline:
            contact = contacts[(step // 2) % len(contacts)]
            try:
                if step % 2 == 0:
                    ledger.consent_withdraw(
                        contact=contact, channel="email", purpose=purpose, source="api", principal=self_principal
                    )
                else:
                    ledger.consent_grant(
                        contact=contact,
                        channel="email",
                        purpose=purpose,
                        source="front_desk",
                        basis="consent",
                        principal=staff_principal,
                    )
                committed += 1  # each call is its own transaction: returned means committed
            except Exception as exc:  # counted and reported, never hidden
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
            step += 1
        connection.close()
        results.put({"worker": number, "committed": committed, "errors": errors, "error": first_error, "chains": chains})
    except BaseException as exc:
        results.put({"worker": number, "committed": committed, "errors": errors + 1, "error": repr(exc), "chains": None})


def concurrent_appends(chains: int, workers: int, seconds: float, pool_ids: list[int]) -> dict[str, Any]:
    from django.db import connections

    from comms.suppression.appending import ledger_chains, ledger_chains_set

    # The ledger's own count, which every append follows (as `manage.py ledger_chains --set`).
    ledger_chains_set(chains=chains, set_by="bench-gate")

    ctx = get_context("spawn")
    ready = ctx.Barrier(workers + 1)
    go = ctx.Event()
    results = ctx.Queue()
    connections.close_all()
    previous = os.environ.get("COMMS_LEDGER_CHAINS")
    os.environ["COMMS_LEDGER_CHAINS"] = str(chains)  # the spawned children read it at setup
    processes = []
    try:
        for number in range(workers):
            mine = pool_ids[number::workers]  # distinct contacts per worker
            process = ctx.Process(
                target=_append_worker,
                args=(number, mine, seconds, ready, go, results),
                name=f"append-{number}",
                daemon=True,
            )
            process.start()
            processes.append(process)
    finally:
        if previous is None:
            os.environ.pop("COMMS_LEDGER_CHAINS", None)
        else:
            os.environ["COMMS_LEDGER_CHAINS"] = previous
    reports: list[dict[str, Any]] = []
    try:
        ready.wait(timeout=180)
        began = time.perf_counter()
        go.set()
        for _ in range(workers):
            reports.append(results.get(timeout=seconds + 120))
        elapsed = time.perf_counter() - began
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
    committed = sum(r["committed"] for r in reports)
    errors = sum(r["errors"] for r in reports)
    seen_chains = {r["chains"] for r in reports}
    if ledger_chains() != chains:
        raise RuntimeError(f"the ledger ran on {ledger_chains()} chains, not {chains}")
    return {
        "chains": chains,
        "workers": workers,
        "seconds": seconds,
        "elapsed_s": round(elapsed, 2),
        "committed": committed,
        "errors": errors,
        "error_sample": next((r["error"] for r in reports if r["error"]), ""),
        "chains_seen_by_workers": sorted(c for c in seen_chains if c is not None),
        "per_worker": sorted(r["committed"] for r in reports),
        # Committed events over the appending window (seconds), not the start-up.
        "events_per_s": round(committed / seconds, 1),
    }


# --- single appends through the HTTP API ---------------------------------------------------------


def _http_client(number: int, port: int, key: str, contact_ids: list[int], seconds: float, go: Any, results: Any) -> None:
    """One API client: ``POST /api/v1/consents`` (a withdrawal, then a grant) until the time is
    up, a new connection per request (gunicorn's sync workers close each)."""
    import http.client

    created = errors = 0
    statuses: dict[str, int] = {}
    first_error = ""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    go.wait(timeout=120)
    deadline = time.monotonic() + seconds
    step = 0
    while time.monotonic() < deadline:
        contact = contact_ids[(step // 2) % len(contact_ids)]
        body: dict[str, Any] = {"contact_id": contact, "channel": "email", "purpose": PURPOSE_KEY}
        if step % 2 == 0:
            body.update(action="withdraw", source="api", actor="self")
        else:
            body.update(action="grant", source="front_desk", basis="consent", actor="staff")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/api/v1/consents", json.dumps(body), headers)
            response = conn.getresponse()
            data = response.read()
            conn.close()
            statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
            if response.status == 201:
                created += 1
            else:
                errors += 1
                first_error = first_error or f"{response.status}: {data[:200]!r}"
        except OSError as exc:  # counted and reported, never hidden
            errors += 1
            first_error = first_error or repr(exc)
        step += 1
    results.put({"client": number, "created": created, "errors": errors, "error": first_error, "statuses": statuses})


def http_appends(chains: int, web_workers: int, clients: int, seconds: float, pool_ids: list[int]) -> dict[str, Any]:
    """Single appends as a member base's systems make them: ``--http-clients`` processes post
    consents to the API served by gunicorn (``--http-workers`` sync workers, as the Procfile's
    web process) on loopback, for ``seconds``. The clients share the two cores with the server."""
    import socket
    import tempfile
    import urllib.request

    from django.db import connections

    from bench.send import start_child
    from comms.accounts.services import api_key_create
    from comms.suppression.appending import ledger_chains_set

    ledger_chains_set(chains=chains, set_by="bench-gate")
    _, key = api_key_create(name=f"bench-gate-http-{time.time_ns()}", role="system")
    connections.close_all()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "COMMS_LEDGER_CHAINS": str(chains), "DB_CONN_MAX_AGE": "600"}
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "comms.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(web_workers),
        "--access-logfile",
        "/dev/null",
    ]
    web = start_child("web", command, env, Path(tempfile.mkdtemp(prefix="comms-bench-gate-")))
    try:
        began = time.monotonic()
        while True:  # up when /healthz answers
            if not web.alive():
                raise RuntimeError(f"gunicorn stopped:\n{web.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - began > 60:
                raise RuntimeError(f"gunicorn did not answer in 60 s:\n{web.tail()}")
            time.sleep(0.2)
        ctx = get_context("spawn")
        go, results = ctx.Event(), ctx.Queue()
        processes = [
            ctx.Process(target=_http_client, args=(n, port, key, pool_ids[n::clients], seconds, go, results), daemon=True)
            for n in range(clients)
        ]
        for process in processes:
            process.start()
        time.sleep(2)  # the clients' interpreters start
        go.set()
        reports = [results.get(timeout=seconds + 120) for _ in processes]
        for process in processes:
            process.join(timeout=30)
    finally:
        web.stop()
    created = sum(r["created"] for r in reports)
    statuses: dict[str, int] = {}
    for report in reports:
        for status, count in report["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        "chains": chains,
        "web_workers": web_workers,
        "clients": clients,
        "seconds": seconds,
        "created": created,
        "errors": sum(r["errors"] for r in reports),
        "error_sample": next((r["error"] for r in reports if r["error"]), ""),
        "statuses": statuses,
        "events_per_s": round(created / seconds, 1),
    }


# --- verification with progress ------------------------------------------------------------------


def with_progress(what: str, function: Callable[[], Any], every: float = 15.0) -> tuple[Any, float]:
    done = threading.Event()
    began = time.perf_counter()

    def heartbeat() -> None:
        while not done.wait(every):
            log(f"{what}: still running ({time.perf_counter() - began:.0f}s)")

    thread = threading.Thread(target=heartbeat, name="progress", daemon=True)
    thread.start()
    try:
        return function(), time.perf_counter() - began
    finally:
        done.set()
        thread.join(timeout=5)


# --- machine -------------------------------------------------------------------------------------


def redis_version() -> str:
    """Redis's version if it answers on loopback (nothing here needs it)."""
    import socket

    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1) as sock:
            sock.settimeout(2)
            sock.sendall(b"INFO server\r\n")
            data = b""
            while b"redis_version" not in data or b"\r\n" not in data.split(b"redis_version", 1)[1]:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        for line in data.decode(errors="replace").splitlines():
            if line.startswith("redis_version:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return ""
    return ""


def machine() -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        settings_wanted = ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "synchronous_commit")
        cursor.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", [list(settings_wanted)])
        pg_settings = {name: f"{setting}{unit or ''}" for name, setting, unit in cursor.fetchall()}
    return {
        **host(),
        "postgres": postgres_version(connection),
        "postgres_settings": pg_settings,
        "redis": redis_version(),
        "cpu_probe_s_at_start": CPU_PROBE_AT_START,
        "cpu_probe_s_at_end": cpu_probe(),
    }


def met(key: str, value: Any) -> str:
    op, target = TARGETS[key]
    if value is None:
        return "not measured"
    values = list(value.values()) if isinstance(value, dict) else [value]
    ok = all(v is not None and (v <= target if op == "<=" else v >= target) for v in values)
    return f"target {op} {target:g}: {'yes' if ok else 'no'}"


# --- main ----------------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("every value must be a positive integer")
    return values


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bin/bench-gate", description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000, help="member contacts with consents")
    parser.add_argument(
        "--sizes", type=int_list, default=[10_000, 100_000, 1_000_000], help="audience sizes (capped at --contacts)"
    )
    parser.add_argument("--checks", type=int, default=2000, help="per-message checks timed")
    parser.add_argument("--chains-list", type=int_list, default=[1, 4, 16], help="COMMS_LEDGER_CHAINS values")
    parser.add_argument("--concurrent-seconds", type=float, default=10.0)
    parser.add_argument("--concurrent-workers", type=int, default=8)
    parser.add_argument(
        "--http-seconds", type=float, default=15.0, help="single appends through the HTTP API (0: skip)"
    )
    parser.add_argument("--http-workers", type=int, default=4, help="gunicorn sync workers serving the API")
    parser.add_argument("--http-clients", type=int, default=8, help="client processes posting consents")
    parser.add_argument(
        "--pool", type=int, default=20_000, help="contacts without consents, for the concurrent appends"
    )
    parser.add_argument("--reuse", action="store_true", help="keep the database if it holds this data set")
    parser.add_argument(
        "--verify-timeout", type=float, default=300, help="seconds state_verify may take before its query is cancelled"
    )
    parser.add_argument(
        "--import-chains", type=int, default=4, help="COMMS_LEDGER_CHAINS for the bulk import (set-up)"
    )
    parser.add_argument(
        "--import-workers", type=int, default=4, help="COMMS_IMPORT_WORKERS for the bulk import (set-up)"
    )
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--output", type=Path, default=RESULTS / "gate.json")
    args = parser.parse_args(argv)
    if not 1 <= args.contacts <= 9_000_000:
        parser.error("--contacts must be between 1 and 9,000,000")
    if args.checks < 1 or args.concurrent_workers < 1 or args.concurrent_seconds <= 0:
        parser.error("--checks, --concurrent-workers and --concurrent-seconds must be positive")
    if args.pool < args.concurrent_workers:
        parser.error("--pool needs at least one contact per concurrent worker")
    args.sizes = sorted({min(size, args.contacts) for size in args.sizes})
    return args


def main(argv: list[str] | None = None) -> int:
    global CPU_PROBE_AT_START
    args = parse(argv)
    apply_env()
    CPU_PROBE_AT_START = cpu_probe()

    record = reusable(args.contacts, args.pool, args.import_chains, args.import_workers) if args.reuse else None
    if record is not None:
        log(f"--reuse: {DB_NAME} holds {args.contacts} contacts (set up {record.get('done_at')}); no set-up")
        reused = True
    else:
        log(f"fresh database {DB_NAME}: {args.contacts} contacts + {args.pool} pool, consents via consents_import")
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            record = pool.submit(setup, args.contacts, args.pool, args.import_chains, args.import_workers).result(
                timeout=6 * 3600
            )
        store_setup(record)
        reused = False

    import django

    django.setup()
    from comms.contacts.models import Brand
    from comms.suppression import selectors, state
    from comms.suppression.models import ConsentEvent, Purpose

    brand = Brand.objects.get(key=BRAND_KEY)
    purpose = Purpose.objects.get(brand=brand, key=PURPOSE_KEY)
    first_id = int(record["first_id"])

    previews: list[dict[str, Any]] = []
    for size in args.sizes:
        result = preview(brand, purpose, first_id, size)
        previews.append(result)
        log(
            f"preview {size}: cold {result['cold_s']:.3f}s, warm {result['warm_s']:.3f}s "
            f"({result['pairs_per_s']:.0f} pairs/s), {result['counts']}, correct={result['correct']}"
        )
    check_stats = checks(purpose, first_id, args.contacts, args.checks, args.seed)
    log(f"check: p50 {check_stats['p50_ms']} ms, p99 {check_stats['p99_ms']} ms, wrong {check_stats['wrong']}")
    peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    log(f"peak RSS of this process after previews and checks: {peak_rss_mb} MB")

    pool_ids = list(range(first_id + args.contacts, first_id + args.contacts + args.pool))
    concurrent: dict[str, dict[str, Any]] = {}
    for chains in args.chains_list:
        log(f"concurrent appends: {args.concurrent_workers} processes, {chains} chain(s), {args.concurrent_seconds:g}s")
        run = concurrent_appends(chains, args.concurrent_workers, args.concurrent_seconds, pool_ids)
        concurrent[str(chains)] = run
        log(
            f"concurrent appends, {chains} chain(s): {run['committed']} events, {run['events_per_s']:.0f}/s, "
            f"{run['errors']} errors {run['error_sample']}"
        )

    http: dict[str, Any] | None = None
    if args.http_seconds > 0:
        chains = max(args.chains_list)
        log(f"appends through the API: {args.http_clients} clients, {args.http_workers} gunicorn workers, {chains} chains")
        http = http_appends(chains, args.http_workers, args.http_clients, args.http_seconds, pool_ids)
        log(f"appends through the API: {http['created']} events, {http['events_per_s']:.0f}/s, {http['errors']} errors {http['error_sample']}")

    events_total = ConsentEvent.objects.count()
    log(f"ledger_verify over {events_total} events")
    verified, verify_s = with_progress("ledger_verify", selectors.ledger_verify)
    log(f"ledger_verify: ok={verified.ok}, {verified.events_checked} events, {verified.chains} chains in {verify_s:.1f}s")
    # Bounded: state_verify's last step (state rows without events) is a NOT IN over the whole
    # ledger, which PostgreSQL cannot hash above work_mem at this size (quadratic; hours at 1M).
    state_error = ""
    state_checked, mismatches, state_s = 0, [], 0.0
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def cancel() -> None:  # statement_timeout does not stop a WITH HOLD cursor's materialisation
        import psycopg

        log(f"state_verify: over {args.verify_timeout:g}s, cancelling its query")
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=10) as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", [backend])

    watchdog = threading.Timer(args.verify_timeout, cancel)
    watchdog.daemon = True
    watchdog.start()
    try:
        (state_checked, mismatches), state_s = with_progress("state_verify", state.state_verify)
        log(f"state_verify: {state_checked} contacts, {len(mismatches)} mismatches in {state_s:.1f}s")
    except Exception as exc:  # reported (and exit 1), never hidden
        state_error = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
        log(f"state_verify did not finish: {state_error}")
        connection.close()
    finally:
        watchdog.cancel()

    by_size = {str(p["size"]): p for p in previews}
    preview_1m = by_size.get("1000000", {}).get("warm_s")
    counts_ok = all(p["correct"] for p in previews) and check_stats["wrong"] == 0
    concurrent_errors = sum(r["errors"] for r in concurrent.values())
    several = {key: run["events_per_s"] for key, run in concurrent.items() if key != "1"}
    result: dict[str, Any] = {
        "benchmark": "gate",
        "preview_1m_s": preview_1m,
        "preview_pairs_per_s": {str(p["size"]): p["pairs_per_s"] for p in previews},
        "preview_s": {str(p["size"]): p["warm_s"] for p in previews},
        "preview_cold_s": {str(p["size"]): p["cold_s"] for p in previews},
        "preview_counts": {str(p["size"]): p["counts"] for p in previews},
        "counts_ok": counts_ok,
        "check_p50_ms": check_stats["p50_ms"],
        "check_p99_ms": check_stats["p99_ms"],
        "check_max_ms": check_stats["max_ms"],
        "checks": check_stats["checks"],
        "bulk_append_per_s": record.get("bulk_append_per_s"),
        "bulk_append_chains": record.get("import_chains", 1),
        "bulk_append_workers": record.get("import_workers", 1),
        "concurrent_append_per_s": {key: run["events_per_s"] for key, run in concurrent.items()},
        "concurrent": concurrent,
        # The target is for several chains; one chain is the reference.
        # Through the API (gunicorn on loopback, the clients on the same cores); no target of its own.
        "http_append_per_s": http["events_per_s"] if http else None,
        "http": http,
        "concurrent_target_met": bool(several)
        and all(rate >= TARGETS["concurrent_append_per_s"][1] for rate in several.values()),
        "peak_rss_mb": peak_rss_mb,
        "peak_rss_mb_at_end": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "contacts": args.contacts,
        "ledger_events": events_total,
        "verify_ok": bool(verified.ok),
        "verify_events": verified.events_checked,
        "verify_chains": verified.chains,
        "verify_first_broken": (
            {
                "event_id": verified.first_broken.event_id,
                "chain": verified.first_broken.chain,
                "problem": verified.first_broken.problem,
            }
            if verified.first_broken
            else None
        ),
        "verify_s": round(verify_s, 1),
        "state_contacts_checked": state_checked,
        "state_mismatches": None if state_error else len(mismatches),
        "state_verify_error": state_error,
        "state_mismatch_sample": [str(m) for m in mismatches[:5]],
        "state_verify_s": round(state_s, 1),
        "targets": {
            "preview_1m_s": 5,
            "check_p99_ms": 2,
            "bulk_append_per_s": 10_000,
            "concurrent_append_per_s": 1_000,
            "peak_rss_mb": 300,
        },
        "setup": {**record, "reused": reused},
        "machine": machine(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")

    m = result["machine"]
    rows: list[tuple[str, Any]] = [
        ("benchmark", "gate (set-based preview, per-message check) and ledger appends"),
        ("machine", f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB"),
        ("postgres / redis", f"{m['postgres']} / {m['redis'] or 'not running'}"),
        ("load average start / end", f"{m['load_average_at_start']} / {m['load_average_at_end']}"),
        ("cpu probe start / end", f"{m['cpu_probe_s_at_start']} / {m['cpu_probe_s_at_end']} s (lower: faster machine)"),
        ("contacts (+ pool)", f"{args.contacts} (+ {args.pool}){'  [reused]' if reused else ''}"),
    ]
    for p in previews:
        rows.append(
            (
                f"preview {p['size']:>9}",
                f"{p['warm_s']:.3f} s warm ({p['cold_s']:.3f} cold), {p['pairs_per_s']:.0f} pairs/s, "
                f"counts {'ok' if p['correct'] else 'WRONG ' + str(p['counts'])}",
            )
        )
    rows += [
        ("preview 1M", f"{preview_1m} s  {met('preview_1m_s', preview_1m)}" if preview_1m is not None else "not measured"),
        (
            "check p50 / p99",
            f"{check_stats['p50_ms']} / {check_stats['p99_ms']} ms  {met('check_p99_ms', check_stats['p99_ms'])}",
        ),
        ("peak RSS", f"{peak_rss_mb} MB  {met('peak_rss_mb', peak_rss_mb)}"),
        (
            "bulk import",
            f"{record.get('bulk_append_per_s')} events/s ({record.get('import_events')} in {record.get('import_s')} s, "
            f"{record.get('import_chains', 1)} chains, {record.get('import_workers', 1)} workers)  "
            f"{met('bulk_append_per_s', record.get('bulk_append_per_s'))}",
        ),
    ]
    for key, run in concurrent.items():
        rows.append(
            (
                f"concurrent, {key} chain(s)",
                f"{run['events_per_s']:.0f} events/s ({run['committed']} by {run['workers']} procs in "
                f"{run['seconds']:g} s, {run['errors']} errors)  "
                + (
                    met("concurrent_append_per_s", run["events_per_s"])
                    if key != "1"
                    else "reference (the target is for several chains)"
                ),
            )
        )
    if http is not None:
        rows.append(
            (
                f"through the API, {http['chains']} chains",
                f"{http['events_per_s']:.0f} events/s ({http['created']} by {http['clients']} clients, "
                f"{http['web_workers']} gunicorn workers, {http['seconds']:g} s, {http['errors']} errors)  "
                "measured, no target of its own",
            )
        )
    rows += [
        ("ledger verified", f"{verified.ok} ({verified.events_checked} events, {verified.chains} chains, {verify_s:.0f} s)"),
        (
            "state mismatches",
            f"NOT VERIFIED: {state_error}"
            if state_error
            else f"{len(mismatches)} ({state_checked} contacts, {state_s:.0f} s)",
        ),
        ("written", args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output),
    ]
    print(table(rows))
    http_errors = http["errors"] if http else 0
    ok = counts_ok and verified.ok and not state_error and not mismatches and concurrent_errors == 0 and http_errors == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
