"""Withdrawal -> Mailchimp propagation time, end to end against the fake Mailchimp (DESIGN §3).

``python -m bench.mailchimp [--withdrawals 300] [--fail-every 0] [--workers 1] [--threads 8]``.
On loopback only: a fresh database ``comms_bench_mc`` and Redis db 10; the fake Mailchimp runs
in this process (``FakeMailchimp``), the dramatiq workers (``manage.py rundramatiq``) as a child
on the Redis broker with the real ``mailchimp-marketing`` client. Each contact gets an email
consent and a subscribed member; then this process withdraws the consents one after another
(``consent_withdraw``, through the ledger). The propagation time of one withdrawal is from its
``AudienceUnsubscribe.requested_at`` (set in the withdrawing transaction) to ``propagated_at``
(set after Mailchimp answered the PUT), both on this machine's clock. ``--fail-every N`` makes
the fake answer every Nth request with an empty 503, so retries are part of the measurement.
Writes ``bench/results/mailchimp.json``. Never part of the unit test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import flush_redis, fresh_database
from bench.send import Child, log, start_workers, wait_for, workers_polling

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DB_NAME = "comms_bench_mc"
PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
REDIS_URL = "redis://127.0.0.1:6379/10"
LIST_ID = "benchlist"
API_KEY = "bench-mailchimp-key-us21"
TARGET_P95_S = 5.0


def reset_state() -> None:
    fresh_database(PG_ADMIN_DSN, DB_NAME)
    flush_redis(REDIS_URL)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--withdrawals", type=int, default=300)
    parser.add_argument(
        "--fail-every", type=int, default=0, help="every Nth Mailchimp request fails (empty 503)"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--settle", type=float, default=8.0, help="seconds to let the workers start")
    args = parser.parse_args(argv)

    from integrations.mailchimp.fake import FakeMailchimp

    fake = FakeMailchimp(api_key=API_KEY, lists=(LIST_ID,)).start()
    env = {
        "COMMS_ENV": "development",
        "DJANGO_SETTINGS_MODULE": "comms.settings",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        "MAILCHIMP_API_KEY": API_KEY,
        "MAILCHIMP_BASE_URL": fake.base_url,
        "MAILCHIMP_AUDIENCES": f"benchmc={LIST_ID}",
        "MAILCHIMP_WEBHOOK_SECRET": "bench-secret",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    os.environ.update(env)
    log(f"fresh database {DB_NAME} and Redis db 10; fake Mailchimp at {fake.base_url}")
    reset_state()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from comms.contacts.models import Brand, Contact
    from comms.suppression import services as ledger
    from integrations.mailchimp.models import AudienceUnsubscribe, PropagationStatus

    brand = Brand.objects.create(key="benchmc", name="BenchMC", email_from="BenchMC <n@bench.example>")
    purpose = ledger.purpose_create(
        brand=brand,
        key="benchmc-newsletter",
        name="Newsletter",
        channels=("email",),
        notice_text="Newsletter",
    )
    staff = ledger.Principal(actor="staff", recorded_by="bench")
    person = ledger.Principal(actor="self", recorded_by="bench")
    contacts = []
    for n in range(args.withdrawals):
        contact = Contact.objects.create(brand=brand, kind="member", email=f"bench{n}@example.no")
        ledger.consent_grant(
            contact=contact,
            channel="email",
            purpose=purpose,
            basis="consent",
            source="front_desk",
            principal=staff,
        )
        fake.put_member(LIST_ID, contact.email or "", "subscribed")
        contacts.append(contact)
    if args.fail_every:
        fake_handle = fake.handle
        counter = {"n": 0}

        def failing(method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> Any:
            counter["n"] += 1
            if counter["n"] % args.fail_every == 0:
                fake.fail_next(1, 503)
            return fake_handle(method, raw_path, headers, raw)

        fake.handle = failing  # type: ignore[method-assign]

    children: list[Child] = []
    log_dir = Path(tempfile.mkdtemp(prefix="comms-bench-mailchimp-"))
    result: dict[str, Any] = {}
    try:
        workers = start_workers(args.workers, args.threads, {**os.environ, **env}, log_dir)
        children.append(workers)
        wait_for("the workers", lambda: workers_polling() >= args.workers, 60, children)
        time.sleep(args.settle)  # let every process finish starting its consumers
        began = time.perf_counter()
        for contact in contacts:
            ledger.consent_withdraw(
                contact=contact, channel="email", purpose=None, source="unsubscribe_link", principal=person
            )
        withdraw_s = time.perf_counter() - began

        def all_done() -> bool:
            return not AudienceUnsubscribe.objects.exclude(status=PropagationStatus.DONE).exists()

        wait_for("every unsubscribe to reach Mailchimp", all_done, args.timeout, children, interval=0.2)
        rows = list(AudienceUnsubscribe.objects.all())
        times = [(r.propagated_at - r.requested_at).total_seconds() for r in rows if r.propagated_at]
        statuses = {c.email: fake.status_of(LIST_ID, c.email or "") for c in contacts}
        result = {
            "benchmark": "mailchimp",
            "withdrawals": len(contacts),
            "propagated": len(times),
            "unsubscribed_in_fake": sum(1 for s in statuses.values() if s == "unsubscribed"),
            "propagation_p50_s": round(statistics.median(times), 3),
            "propagation_p95_s": round(percentile(times, 0.95), 3),
            "propagation_max_s": round(max(times), 3),
            "target_p95_s": TARGET_P95_S,
            "meets_target": percentile(times, 0.95) <= TARGET_P95_S,
            "withdraw_s": round(withdraw_s, 3),
            "retries": sum(max(0, r.attempts - 1) for r in rows),
            "fail_every": args.fail_every,
            "delete_permanent_calls": sum(1 for r in fake.requests if "delete-permanent" in r["path"]),
            "workers": args.workers,
            "threads": args.threads,
        }
    finally:
        for child in children:
            child.stop()
        fake.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mailchimp.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result.get("propagated") == result.get("withdrawals") else 1


if __name__ == "__main__":
    sys.exit(main())
