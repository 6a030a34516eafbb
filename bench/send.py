"""Send throughput and the zero-leak withdrawal race, end to end (DESIGN §8).

One command: ``bin/bench-send [--messages 20000] [--withdrawals 2000] [--workers 2] [--threads 8]``
(``python -m bench.send --help`` lists every option). Everything runs on loopback:

1. Fresh state: drops and recreates the PostgreSQL database ``comms_bench`` (127.0.0.1:5432, user
   postgres), flushes Redis database 9, migrates. The benchmark generates its own data: one brand,
   one SMS purpose, ``--messages`` contacts with distinct Norwegian mobiles (normalised by the
   service's own ``normalise_mobile``) and one SMS consent grant per contact, each written through
   ``comms.suppression.services.consent_grant`` (the hash-chained ledger, no shortcut).
2. Starts the fake LifeVision (``python -m integrations.lifevision.fake``, delivery reports off)
   and ``manage.py rundramatiq --processes W --threads T`` on the Redis broker, waits until every
   worker process polls Redis and warms them up with a small campaign of another brand.
3. Throughput: a campaign to every contact, sent now from this process (``campaign_send_now``; the
   start actor goes through Redis). The clock runs from the send call until the campaign is
   finished, i.e. every delivery is terminal. On the way every message takes the real path: the
   start actor inserts the deliveries set-based and enqueues batches; each send actor locks its
   batch, takes the shared sender lock on the addresses, asks the gate, hands the allowed messages
   to the fake over HTTP and records each decision. ``sms_per_s`` = messages sent / seconds. The
   fake's own record must hold exactly the messages the database says were sent, once each.
4. The race: campaigns to the same contacts (rounds, until every withdrawal has raced one) while
   ``--withdraw-threads`` threads here withdraw the SMS consent (every SMS purpose) of
   ``--withdrawals`` contacts picked at random from the send front: the next queued deliveries,
   i.e. the batches holding the sender's lock (the withdrawal must wait for them) and those about
   to take it (their gate must see the withdrawal). A **leak** is a message handed over for a
   withdrawn contact although the gate must have seen the withdrawal: a delivery ``sent`` whose
   ``decided_at`` is not before the withdrawal event's ``recorded_at`` (one clock: this machine's),
   or a message the fake received for a withdrawn contact that the database does not record as
   sent before the withdrawal, or that the fake stamped with a later second than the withdrawal's.
   Messages sent before the withdrawal are allowed and counted; so are denials.
5. Prints a table and writes ``bench/results/send.json``.

The children get the same environment as this process: ``COMMS_ENV=development`` with
``DATABASE_URL``/``REDIS_URL`` pointing at the above, ``DJANGO_DEBUG=false``,
``COMMS_SMS_QUIET_HOURS=false`` (so the benchmark runs at any hour),
``COMMS_FREQUENCY_CAP_SMS=1000/1`` (the race campaigns go to the same people again),
``DB_CONN_MAX_AGE`` (``--conn-max-age``, default 60 s as in a production setup) and, only with
``--batch-size``, ``COMMS_SEND_BATCH_SIZE``; otherwise the shipped default batch size is measured.
Child processes are always stopped (their whole process groups) and every wait is bounded by a
timeout. The consent grants of the set-up go one by one through the ledger's service, so they
take minutes at the default size (about 80 grants/s on 2 cores); the table reports that time.
Never part of the unit test suite.
Longer than 400 lines on purpose: a benchmark is read top to bottom as its procedure; the
other benchmarks import its set-up (database, data, children, fake) from here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.common import cpu_probe, flush_redis, fresh_database, host, logger, postgres_version, table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# BENCH_DB_NAME / BENCH_REDIS_URL move a run elsewhere (e.g. beside another engineer's run).
DB_NAME = os.environ.get("BENCH_DB_NAME", "comms_bench")
PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
FAKE_API_KEY = "bench-lifevision-key"
FAKE_WEBHOOK_SECRET = "bench-lifevision-webhook-secret"
TARGET_SMS_PER_S = 500
GOAL_SMS_PER_S = 2000
TEXT = "Hei {first_name}! Denne uka får du 20 % på årskort hos {brand}. Vi sees på senteret!"
FIRST_NAMES = ["Ola", "Kari", "Nora", "Emma", "Jakob", "Lukas", "Ingrid", "Sofie", "Henrik", "Maja", "Aksel"]
LAST_NAMES = ["Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Berg", "Haugen"]


log = logger("bench")


# --- environment and fresh state -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_env(args: argparse.Namespace, fake_url: str) -> dict[str, str]:
    env = {
        "COMMS_ENV": "development",
        "DJANGO_SETTINGS_MODULE": "comms.settings",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "DB_CONN_MAX_AGE": str(args.conn_max_age),
        "COMMS_SMS_QUIET_HOURS": "false",
        "COMMS_FREQUENCY_CAP_SMS": "1000/1",
        "LIFEVISION_BASE_URL": fake_url,
        "LIFEVISION_API_KEY": FAKE_API_KEY,
        "LIFEVISION_WEBHOOK_SECRET": FAKE_WEBHOOK_SECRET,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        # Only loopback: no proxy may catch the hand-off to the fake.
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    if args.batch_size is not None:  # otherwise the shipped default (settings.SEND_BATCH_SIZE)
        env["COMMS_SEND_BATCH_SIZE"] = str(args.batch_size)
    return env


def reset_state() -> None:
    fresh_database(PG_ADMIN_DSN, DB_NAME)
    flush_redis(REDIS_URL)


# --- data ----------------------------------------------------------------------------------------


def mobile(n: int) -> str:
    """A distinct Norwegian mobile number (+47 9xx xx xxx) for each n below 10,000,000."""
    return f"+479{n:07d}"


def make_brand(key: str, name: str, count: int, first_number: int) -> tuple[Any, Any, list[int]]:
    """A brand, its SMS purpose and ``count`` member contacts with normalised mobiles."""
    from comms.contacts.addresses import normalise_mobile
    from comms.contacts.models import Brand, Contact, ContactKind
    from comms.suppression import services as ledger

    brand = Brand.objects.create(key=key, name=name, sms_sender=name[:11])
    purpose = ledger.purpose_create(
        brand=brand,
        key=f"{key}-offers",
        name=f"{name} offers",
        channels=["sms"],
        notice_text=f"{name} sends offers and news by SMS. Reply STOPP or use the link to stop.",
    )
    rng = random.Random(count)
    rows = [
        Contact(
            brand=brand,
            kind=ContactKind.MEMBER,
            external_id=f"{key}-{i}",
            first_name=rng.choice(FIRST_NAMES),
            last_name=rng.choice(LAST_NAMES),
            mobile=normalise_mobile(mobile(first_number + i)),
        )
        for i in range(count)
    ]
    for row in rows:
        row.refresh_address_keys()  # bulk_create skips save(), which keeps the keys
    Contact.objects.bulk_create(rows, batch_size=2000)
    ids = list(Contact.objects.filter(brand=brand).order_by("id").values_list("id", flat=True))
    return brand, purpose, ids


def _grant_chunk(purpose_id: int, contact_ids: list[int]) -> int:
    """Record one SMS consent per contact through the ledger service (runs in a pool process)."""
    from django.db import connection

    from comms.contacts.models import Contact
    from comms.suppression import services as ledger
    from comms.suppression.models import Purpose

    purpose = Purpose.objects.get(pk=purpose_id)
    principal = ledger.Principal(actor="staff", recorded_by="bench")
    done = 0
    for contact in Contact.objects.filter(pk__in=contact_ids).order_by("id"):
        ledger.consent_grant(
            contact=contact,
            channel="sms",
            purpose=purpose,
            basis="consent",
            source="front_desk",
            principal=principal,
            opt_out_offered=True,
        )
        done += 1
    connection.close()
    return done


def grant_all(purpose_id: int, contact_ids: list[int], processes: int) -> int:
    from django.db import connections

    chunks = [contact_ids[i : i + 500] for i in range(0, len(contact_ids), 500)]
    if processes <= 1:
        return sum(_grant_chunk(purpose_id, chunk) for chunk in chunks)
    connections.close_all()  # forked children must open their own connections
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("fork")) as pool:
        return sum(pool.map(_grant_chunk, [purpose_id] * len(chunks), chunks))


# --- child processes -----------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def start_child(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so stop() reaches the forked workers
        )
    return Child(name, process, log_path)


def start_workers(processes: int, threads: int, env: dict[str, str], log_dir: Path, name: str = "workers") -> Child:
    """``manage.py rundramatiq`` with ``processes`` × ``threads`` on the benchmark's Redis."""
    command = [
        sys.executable,
        "manage.py",
        "rundramatiq",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    return start_child(name, command, env, log_dir)


def start_fake_lifevision(port: int, api_key: str, webhook_secret: str, env: dict[str, str], log_dir: Path) -> Child:
    """The project's fake LifeVision on loopback, without delivery reports."""
    command = [
        sys.executable,
        "-m",
        "integrations.lifevision.fake",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-key",
        api_key,
        "--webhook-secret",
        webhook_secret,
        "--no-reports",
    ]
    return start_child("fake-lifevision", command, env, log_dir)


def wait_for(what: str, ready: Any, timeout: float, children: list[Child], interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in children:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited while waiting for {what}:\n{child.tail()}")
        if ready():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class Fake:
    """This process's view of the fake LifeVision (HTTP on loopback)."""

    def __init__(self, base_url: str) -> None:
        import requests

        self.base_url = base_url
        self.session = requests.Session()
        self.session.trust_env = False  # never through a proxy

    def answers(self) -> bool:
        import requests

        try:
            return bool(self.session.get(f"{self.base_url}/_fake/messages", timeout=2).ok)
        except requests.RequestException:
            return False

    def all_messages(self) -> tuple[list[dict[str, Any]], int]:
        """Every message the fake accepted, and how many send requests it answered."""
        response = self.session.get(f"{self.base_url}/_fake/messages", timeout=120)
        response.raise_for_status()
        data = response.json()
        return list(data["messages"]), int(data["requests"])


def workers_polling() -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        return int(client.zcard("dramatiq:__heartbeats__"))
    finally:
        client.close()


# --- running a campaign --------------------------------------------------------------------------


@dataclass
class Run:
    campaign_id: int
    started: datetime
    finished: datetime | None = None
    elapsed_s: float = 0.0
    first_decision_s: float = 0.0
    by_status: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)


def create_campaign(brand: Any, purpose: Any, name: str) -> Any:
    from comms.campaigns import services

    return services.campaign_create(
        brand=brand,
        data=services.CampaignInput(name=name, channel="sms", purpose=purpose.key, text=TEXT),
        created_by="bench",
    )


def send_and_wait(campaign: Any, expected: int, timeout: float, children: list[Child]) -> Run:
    from django.db.models import Count, Min
    from django.utils import timezone

    from comms.campaigns import services
    from comms.campaigns.models import Campaign, CampaignStatus, Delivery

    run = Run(campaign.pk, timezone.now())
    services.campaign_send_now(campaign=campaign)
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while True:
        current = Campaign.objects.get(pk=campaign.pk)
        if current.status == CampaignStatus.SENT:
            break
        if current.status in (
            CampaignStatus.FAILED,
            CampaignStatus.SENT_WITH_FAILURES,
            CampaignStatus.CANCELLED,
            CampaignStatus.PAUSED,
        ):
            raise RuntimeError(f"campaign {campaign.pk} ended {current.status}")
        for child in children:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited during the run:\n{child.tail()}")
        now = time.monotonic()
        if now > deadline:
            counts = dict(
                Delivery.objects.filter(campaign_id=campaign.pk)
                .values_list("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
            raise TimeoutError(f"campaign {campaign.pk} not finished after {timeout:.0f}s: {counts}")
        if now - last_report > 2:
            counts = dict(
                Delivery.objects.filter(campaign_id=campaign.pk)
                .values_list("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
            log(f"campaign {campaign.pk}: {counts}")
            last_report = now
        time.sleep(0.1)
    assert current.finished_at is not None
    run.finished = current.finished_at
    run.elapsed_s = (current.finished_at - run.started).total_seconds()
    deliveries = Delivery.objects.filter(campaign_id=campaign.pk)
    first = deliveries.aggregate(first=Min("decided_at"))["first"]
    run.first_decision_s = (first - run.started).total_seconds() if first else 0.0
    run.by_status = dict(deliveries.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    run.by_reason = dict(deliveries.values_list("reason").annotate(n=Count("id")).values_list("reason", "n"))
    total = sum(run.by_status.values())
    if total != expected:
        raise RuntimeError(f"campaign {campaign.pk} has {total} deliveries, expected {expected}")
    return run


def check_fake(messages: list[dict[str, Any]], campaign_id: int) -> dict[str, Any]:
    """Compare what the fake received for a campaign with what the database says was sent."""
    from comms.campaigns.models import Delivery, DeliveryStatus

    tag = f"campaign:{campaign_id}"
    received = [m for m in messages if tag in m.get("tags", [])]
    sent_ids = {
        str(e)
        for e in Delivery.objects.filter(campaign_id=campaign_id, status=DeliveryStatus.SENT).values_list(
            "external_id", flat=True
        )
    }
    fake_ids = [m["external_id"] for m in received]
    recipients = [m["to"] for m in received]
    return {
        "received": len(received),
        "accepted": sum(1 for m in received if m.get("status") == "accepted"),
        # The same message twice, or two messages of one campaign to one person.
        "duplicates": (len(fake_ids) - len(set(fake_ids))) + (len(recipients) - len(set(recipients))),
        "sent_not_received": len(sent_ids - set(fake_ids)),
        "received_not_sent": len(set(fake_ids) - sent_ids),
    }


# --- the race ------------------------------------------------------------------------------------


@dataclass
class Withdrawal:
    contact_id: int
    round: int
    event_id: int = 0
    recorded_at: datetime | None = None
    latency_ms: float = 0.0
    error: str = ""


class Race:
    """Withdrawals aimed at the send front of a running campaign.

    A watcher thread keeps the ids of the next ``window`` queued deliveries (the lowest ids: the
    batches being sent and the next ones); ``threads`` threads each pick a random contact from
    that front and withdraw their SMS consent, so withdrawals hit batches that hold the sender's
    lock (the withdrawal must wait) and batches about to take it (the gate must see it).
    """

    def __init__(self, wanted: int, threads: int, window: int, seed: int) -> None:
        self.wanted = wanted
        self.threads = threads
        self.window = window
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.claimed: set[int] = set()
        self.withdrawals: list[Withdrawal] = []
        self.front: list[int] = []

    def left(self) -> int:
        with self.lock:
            return self.wanted - len(self.withdrawals)

    def run_round(self, campaign_id: int, round_no: int, stop: threading.Event, deadline: float) -> None:
        from django.db import connection

        from comms.campaigns.models import Delivery, DeliveryStatus
        from comms.contacts.models import Contact
        from comms.suppression import services as ledger

        principal = ledger.Principal(actor="self", recorded_by="bench")

        def watch() -> None:
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    front = list(
                        Delivery.objects.filter(campaign_id=campaign_id, status=DeliveryStatus.QUEUED)
                        .order_by("id")
                        .values_list("contact_id", flat=True)[: self.window]
                    )
                    with self.lock:
                        self.front = front
                    time.sleep(0.02)
            finally:
                connection.close()

        def withdraw() -> None:
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    with self.lock:
                        if len(self.withdrawals) >= self.wanted:
                            return
                        candidates = [c for c in self.front if c not in self.claimed]
                        item = None
                        if candidates:
                            item = Withdrawal(self.rng.choice(candidates), round_no)
                            self.claimed.add(item.contact_id)
                            self.withdrawals.append(item)
                    if item is None:
                        time.sleep(0.005)  # deliveries not created yet, or the front is all taken
                        continue
                    began = time.perf_counter()
                    try:
                        event = ledger.consent_withdraw(
                            contact=Contact.objects.get(pk=item.contact_id),
                            channel="sms",
                            purpose=None,
                            source="api",
                            principal=principal,
                        )
                    except Exception as exc:  # recorded and reported, never hidden
                        item.error = f"{type(exc).__name__}: {exc}"
                        continue
                    item.latency_ms = (time.perf_counter() - began) * 1000
                    item.event_id, item.recorded_at = event.pk, event.recorded_at
            finally:
                connection.close()

        self.front = []
        pool = [threading.Thread(target=watch, name="front-watcher", daemon=True)]
        pool += [
            threading.Thread(target=withdraw, name=f"withdraw-{i}", daemon=True) for i in range(self.threads)
        ]
        for thread in pool:
            thread.start()
        stop.wait(max(0.0, deadline - time.monotonic()))
        for thread in pool:
            thread.join(timeout=max(1.0, deadline - time.monotonic()))


def _second(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


def race_result(
    withdrawals: list[Withdrawal], runs: list[Run], fake_messages: list[dict[str, Any]]
) -> dict[str, Any]:
    """Classify every race delivery to a withdrawn contact. A leak is a message handed over although
    the gate must have seen the withdrawal (decided at or after it was recorded), by the database's
    record or by the fake's."""
    from comms.campaigns.models import Delivery, DeliveryStatus
    from comms.suppression.models import Action, ConsentEvent

    done = {w.contact_id: w for w in withdrawals if w.recorded_at is not None}
    # The ledger's own record of each withdrawal (recorded_at is taken inside the locked append).
    recorded = dict(
        ConsentEvent.objects.filter(action=Action.WITHDRAW, contact_id__in=list(done)).values_list(
            "contact_id", "recorded_at"
        )
    )
    round_of = {run.campaign_id: number for number, run in enumerate(runs, start=1)}
    rows = Delivery.objects.filter(campaign_id__in=list(round_of), contact_id__in=list(done)).values(
        "campaign_id", "contact_id", "status", "reason", "decided_at", "external_id"
    )
    handed_over = {DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.BOUNCED}
    leaks_db = sent_before = sent_earlier_rounds = denied = denied_later = other = 0
    denied_reasons: dict[str, int] = {}
    sent_before_ids: set[str] = set()
    withdrawn_external: dict[str, int] = {}
    for row in rows:
        contact_id = row["contact_id"]
        at = recorded[contact_id]
        same_round = round_of[row["campaign_id"]] == done[contact_id].round
        withdrawn_external[str(row["external_id"])] = contact_id
        if row["status"] in handed_over:
            if row["decided_at"] is None or row["decided_at"] >= at:
                leaks_db += 1
            else:
                sent_before_ids.add(str(row["external_id"]))
                if same_round:
                    sent_before += 1
                else:
                    sent_earlier_rounds += 1
        elif row["status"] == DeliveryStatus.DENIED:
            if same_round:
                denied += 1
                denied_reasons[row["reason"]] = denied_reasons.get(row["reason"], 0) + 1
            else:
                denied_later += 1
        else:
            other += 1
    leaks_fake = 0
    for message in fake_messages:
        contact_id = withdrawn_external.get(message["external_id"])
        if contact_id is None:
            continue  # not a withdrawn contact
        received = datetime.fromisoformat(message["received_at"].replace("Z", "+00:00"))
        # The fake stamps whole seconds: a later second than the withdrawal's is surely after it.
        if message["external_id"] not in sent_before_ids or received > _second(recorded[contact_id]):
            leaks_fake += 1
    during = 0
    for w in done.values():
        run = runs[w.round - 1]
        if (
            w.recorded_at is not None
            and run.finished is not None
            and run.started <= w.recorded_at <= run.finished
        ):
            during += 1
    latencies = sorted(w.latency_ms for w in done.values())
    errors = [w.error for w in withdrawals if w.error]
    return {
        "withdrawals": len(done),
        "withdrawal_errors": len(errors),
        "withdrawal_error_sample": errors[0] if errors else "",
        "withdrawals_during_send": during,
        "leaks_after_withdrawal": leaks_db + leaks_fake,
        "leaks_db": leaks_db,
        "leaks_fake": leaks_fake,
        "withdrawn_sent_before_withdrawal": sent_before,
        "withdrawn_denied": denied,
        "withdrawn_denied_reasons": denied_reasons,
        "withdrawn_denied_in_later_rounds": denied_later,
        "withdrawn_sent_in_earlier_rounds": sent_earlier_rounds,
        "withdrawn_other": other,
        "withdraw_latency_ms": {
            "p50": round(statistics.median(latencies), 2) if latencies else None,
            "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2) if latencies else None,
            "max": round(latencies[-1], 2) if latencies else None,
        },
    }


# --- machine -------------------------------------------------------------------------------------


def machine(probe_at_start: float | None) -> dict[str, Any]:
    """The machine, with the CPU probe the caller took at its start and one taken now."""
    import redis
    from django.db import connection

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    redis_version = client.info("server").get("redis_version", "")
    client.close()
    return {
        **host(),
        "postgres": postgres_version(connection),
        "redis": redis_version,
        "cpu_probe_s_at_start": probe_at_start,
        "cpu_probe_s_at_end": cpu_probe(),
    }


def worker_errors(child: Child) -> int:
    try:
        text = child.log_path.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if " ERROR " in line or line.startswith("Traceback"))


# --- main ----------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bin/bench-send", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20000, help="contacts, so SMS per campaign")
    parser.add_argument("--withdrawals", type=int, default=2000, help="withdrawals racing the race campaigns")
    parser.add_argument("--workers", type=int, default=2, help="dramatiq worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="COMMS_SEND_BATCH_SIZE (1–1000; default: the setting's)"
    )
    parser.add_argument("--conn-max-age", type=int, default=60, help="DB_CONN_MAX_AGE for the workers")
    parser.add_argument("--withdraw-threads", type=int, default=8, help="threads withdrawing here")
    parser.add_argument("--race-rounds", type=int, default=20, help="most race campaigns to run")
    parser.add_argument(
        "--race-window",
        type=int,
        default=0,
        help="withdraw among the next N queued deliveries (default batch size × workers × threads)",
    )
    parser.add_argument("--grant-processes", type=int, default=2, help="processes recording the grants")
    parser.add_argument("--warmup", type=int, default=500, help="SMS of the warm-up campaign")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per campaign")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--output", type=Path, default=RESULTS / "send.json")
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= 1_000_000:
        parser.error("--messages must be between 1 and 1,000,000")
    if not 0 <= args.withdrawals <= args.messages:
        parser.error("--withdrawals must be between 0 and --messages")
    if args.batch_size is not None and not 1 <= args.batch_size <= 1000:
        parser.error("--batch-size must be between 1 and 1000")
    if args.workers < 1 or args.threads < 1 or args.withdraw_threads < 1 or args.grant_processes < 1:
        parser.error("--workers, --threads, --withdraw-threads and --grant-processes must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    probe_at_start = cpu_probe()
    port = free_port()
    fake_url = f"http://127.0.0.1:{port}"
    env = bench_env(args, fake_url)
    os.environ.update(env)
    child_env = {**os.environ, **env}
    log_dir = Path(tempfile.mkdtemp(prefix="comms-bench-send-"))

    log(f"fresh database {DB_NAME} and Redis {REDIS_URL}")
    reset_state()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.conf import settings

    batch_size = int(settings.SEND_BATCH_SIZE)  # what the workers use: they get the same environment

    began = time.perf_counter()
    brand, purpose, contact_ids = make_brand("benchfit", "BenchFit", args.messages, 0)
    warm_brand, warm_purpose, warm_ids = make_brand("benchwarm", "BenchWarm", args.warmup, 5_000_000)
    contacts_s = time.perf_counter() - began
    log(f"{len(contact_ids) + len(warm_ids)} contacts in {contacts_s:.1f}s; recording the consents")
    began = time.perf_counter()
    granted = grant_all(purpose.pk, contact_ids, args.grant_processes)
    granted += grant_all(warm_purpose.pk, warm_ids, args.grant_processes)
    grants_s = time.perf_counter() - began
    log(f"{granted} consent grants through the ledger in {grants_s:.1f}s ({granted / grants_s:.0f}/s)")

    children: list[Child] = []
    result: dict[str, Any] = {}
    try:
        fake_child = start_fake_lifevision(port, FAKE_API_KEY, FAKE_WEBHOOK_SECRET, child_env, log_dir)
        children.append(fake_child)
        fake = Fake(fake_url)
        wait_for("the fake LifeVision", fake.answers, 30, children)
        workers = start_workers(args.workers, args.threads, child_env, log_dir)
        children.append(workers)
        wait_for(f"{args.workers} worker processes", lambda: workers_polling() >= args.workers, 60, children)
        log(f"fake on {fake_url}, {args.workers}×{args.threads} workers polling Redis; warming up")
        send_and_wait(create_campaign(warm_brand, warm_purpose, "warm-up"), len(warm_ids), 120, children)

        # 1. throughput
        log(f"throughput: {len(contact_ids)} SMS")
        run = send_and_wait(
            create_campaign(brand, purpose, "throughput"), len(contact_ids), args.timeout, children
        )
        sent = run.by_status.get("sent", 0)
        sms_per_s = sent / run.elapsed_s if run.elapsed_s > 0 else 0.0
        fake_check = check_fake(fake.all_messages()[0], run.campaign_id)
        log(f"throughput: {sent} sent in {run.elapsed_s:.2f}s = {sms_per_s:.0f} SMS/s")

        # 2. the race: rounds of campaigns to the same contacts until every withdrawal has raced one
        race = Race(
            args.withdrawals,
            args.withdraw_threads,
            args.race_window or batch_size * args.workers * args.threads,
            args.seed,
        )
        race_runs: list[Run] = []
        deadline = time.monotonic() + args.timeout
        while race.left() > 0 and len(race_runs) < args.race_rounds and time.monotonic() < deadline:
            number = len(race_runs) + 1
            campaign = create_campaign(brand, purpose, f"race {number}")
            log(
                f"race {number}: {len(contact_ids)} SMS, {race.left()} withdrawals left, {args.withdraw_threads} threads"
            )
            stop = threading.Event()
            withdrawer = threading.Thread(
                target=race.run_round, args=(campaign.pk, number, stop, deadline), name="race", daemon=True
            )
            withdrawer.start()
            try:
                race_runs.append(send_and_wait(campaign, len(contact_ids), args.timeout, children))
            finally:
                stop.set()
                withdrawer.join(timeout=60)
            if withdrawer.is_alive():
                raise TimeoutError("the withdrawal threads did not stop")
        all_messages, fake_requests = fake.all_messages()
        race_checks = [check_fake(all_messages, r.campaign_id) for r in race_runs]
        race_ids = {f"campaign:{r.campaign_id}" for r in race_runs}
        race_messages = [m for m in all_messages if race_ids & set(m.get("tags", []))]
        race_stats = race_result(race.withdrawals, race_runs, race_messages)
        race_sent = sum(r.by_status.get("sent", 0) for r in race_runs)
        race_elapsed = sum(r.elapsed_s for r in race_runs)
        race_reasons: dict[str, int] = {}
        for r in race_runs:
            for reason, n in r.by_reason.items():
                race_reasons[reason] = race_reasons.get(reason, 0) + n

        from comms.suppression.selectors import ledger_verify

        verified = ledger_verify()
        result = {
            "benchmark": "send",
            "sms_per_s": round(sms_per_s, 1),
            "target_sms_per_s": TARGET_SMS_PER_S,
            "goal_sms_per_s": GOAL_SMS_PER_S,
            "meets_target": sms_per_s >= TARGET_SMS_PER_S,
            "messages": len(contact_ids),
            "sent": sent,
            "elapsed_s": round(run.elapsed_s, 3),
            "first_decision_s": round(run.first_decision_s, 3),
            "by_status": run.by_status,
            "by_reason": run.by_reason,
            "workers": args.workers,
            "threads": args.threads,
            "gate_batch_size": batch_size,
            "db_conn_max_age": args.conn_max_age,
            "fake_received": fake_check["received"],
            "fake_requests": fake_requests,
            "duplicates": fake_check["duplicates"] + sum(c["duplicates"] for c in race_checks),
            "sent_not_received": fake_check["sent_not_received"]
            + sum(c["sent_not_received"] for c in race_checks),
            "received_not_sent": fake_check["received_not_sent"]
            + sum(c["received_not_sent"] for c in race_checks),
            "race_rounds": len(race_runs),
            "race_messages": len(contact_ids) * len(race_runs),
            "race_sent": race_sent,
            "race_elapsed_s": round(race_elapsed, 3),
            "race_sms_per_s": round(race_sent / race_elapsed, 1) if race_elapsed > 0 else 0.0,
            "race_by_reason": race_reasons,
            "race_window": race.window,
            "withdraw_threads": args.withdraw_threads,
            **race_stats,
            "zero_leaks": race_stats["leaks_after_withdrawal"] == 0,
            "setup": {
                "contacts": len(contact_ids) + len(warm_ids),
                "contacts_s": round(contacts_s, 2),
                "consent_grants": granted,
                "consent_grants_s": round(grants_s, 2),
                "grant_processes": args.grant_processes,
                "warmup_messages": len(warm_ids),
            },
            "ledger_verified": verified.ok,
            "ledger_events": verified.events_checked,
            "worker_log_errors": worker_errors(workers),
            "logs": str(log_dir),
            "machine": machine(probe_at_start),
        }
    finally:
        for child in reversed(children):
            child.stop()

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(
        table(
            [
                ("benchmark", "send (gate + delivery row + hand-off to the fake LifeVision)"),
                (
                    "machine",
                    f"{result['machine']['cpu']}, {result['machine']['cores']} cores, "
                    f"{result['machine']['memory_gib']} GiB",
                ),
                ("postgres / redis", f"{result['machine']['postgres']} / {result['machine']['redis']}"),
                ("workers × threads", f"{args.workers} × {args.threads}"),
                ("gate batch size", batch_size),
                ("messages", result["messages"]),
                ("sent (fake received)", f"{result['sent']} ({result['fake_received']})"),
                ("elapsed", f"{result['elapsed_s']:.2f} s"),
                ("SMS/s", f"{result['sms_per_s']:.0f}  (floor {TARGET_SMS_PER_S}, goal {GOAL_SMS_PER_S})"),
                ("duplicates", result["duplicates"]),
                ("sent ≠ received", result["sent_not_received"] + result["received_not_sent"]),
                (
                    "race: rounds × SMS, SMS/s",
                    f"{result['race_rounds']} × {result['messages']}, {result['race_sms_per_s']:.0f}",
                ),
                (
                    "race: withdrawals",
                    f"{result['withdrawals']} ({result['withdrawals_during_send']} during "
                    f"the send, {result['withdrawal_errors']} errors)",
                ),
                ("race: sent before withdrawal", result["withdrawn_sent_before_withdrawal"]),
                ("race: denied after withdrawal", result["withdrawn_denied"]),
                ("race: denied in later rounds", result["withdrawn_denied_in_later_rounds"]),
                (
                    "race: withdraw ms p50/p95/max",
                    "{p50} / {p95} / {max}".format(**result["withdraw_latency_ms"]),
                ),
                (
                    "LEAKS after withdrawal",
                    f"{result['leaks_after_withdrawal']} (db {result['leaks_db']}, "
                    f"fake {result['leaks_fake']})",
                ),
                ("ledger verified", f"{result['ledger_verified']} ({result['ledger_events']} events)"),
                ("setup: consent grants", f"{granted} in {grants_s:.1f} s"),
                ("worker log errors", result["worker_log_errors"]),
                (
                    "written",
                    args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output,
                ),
            ]
        )
    )
    ok = (
        result["leaks_after_withdrawal"] == 0
        and result["duplicates"] == 0
        and result["sent_not_received"] == 0
        and result["received_not_sent"] == 0
        and result["withdrawal_errors"] == 0
        and result["withdrawals"] == args.withdrawals
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
