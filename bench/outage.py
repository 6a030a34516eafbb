"""A provider outage and a 429 storm during a campaign, end to end (issue 15).

One command: ``bin/bench-outage [--messages 2000] [--outage 60] [--storm 30] [--workers 2]``
(``python -m bench.outage --help`` lists every option). Everything runs on loopback:

1. Fresh state: drops and recreates the PostgreSQL database ``comms_bench_outage``, flushes Redis
   database 12 (``BENCH_DB_NAME`` / ``BENCH_REDIS_URL`` move it), migrates, and generates one
   brand, one SMS purpose and ``--messages`` contacts with a consent each, through the ledger
   service (as ``bin/bench-send`` does).
2. Starts the fake LifeVision and ``manage.py rundramatiq`` on Redis. This process stands in for
   the scheduler: it runs the minute tick (``campaigns_tick``: start due campaigns, sweep what the
   broker lost) every ``--tick`` seconds.
3. **Outage**: the fake answers every request 503 from before the campaign starts; the campaign
   is sent; after ``--kill-after`` seconds every worker process is killed with SIGKILL and started
   again; after ``--outage`` seconds the fake recovers. Reported: whether the campaign showed
   "paused — provider unavailable", how long after recovery it finished, its ending, and the
   fake's record held against the database (0 lost, 0 duplicated).
4. **429 storm**: 80 % of requests (``--storm-ratio``) answered 429 with ``Retry-After: 1`` for
   ``--storm`` seconds while a second campaign to the same people runs; it must end ``sent``
   with nothing failed.
5. Prints a table and writes ``bench/results/outage.json``; exits 1 if a message was lost,
   duplicated or failed, or a campaign did not end ``sent``.

The children run with short windows: ``COMMS_PROVIDER_PROBE_INTERVAL`` (``--probe``, 2 s),
``COMMS_SEND_BACKOFF_MAX`` 10 s, ``COMMS_SEND_SWEEP_AFTER_SECONDS`` 20 and a retry window of an
hour, so the run takes minutes. Never part of the unit test suite.
Longer than 400 lines on purpose: a benchmark is read top to bottom as its procedure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("BENCH_DB_NAME", "comms_bench_outage")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")

from bench.common import cpu_probe

# The two names above must be set before bench.send reads them.
from bench.send import (
    DB_NAME,
    REDIS_URL,
    RESULTS,
    ROOT,
    Child,
    Fake,
    bench_env,
    check_fake,
    create_campaign,
    free_port,
    grant_all,
    log,
    machine,
    make_brand,
    reset_state,
    start_fake_lifevision,
    start_workers,
    table,
    wait_for,
    worker_errors,
    workers_polling,
)


def control(fake: Fake, path: str, body: dict[str, Any]) -> None:
    response = fake.session.post(f"{fake.base_url}/_fake/{path}", json=body, timeout=10)
    response.raise_for_status()


def kill_hard(child: Child) -> None:
    """kill -9 of every process of the worker group: nothing gets to clean up."""
    try:
        os.killpg(child.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    child.process.wait(timeout=30)


class Ticker:
    """The scheduler's minute tick, every ``interval`` seconds, in a thread of this process."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.stop = threading.Event()
        self.errors = 0
        self.thread = threading.Thread(target=self._run, name="tick", daemon=True)

    def _run(self) -> None:
        from django.db import connection

        from comms.campaigns import services

        while not self.stop.wait(self.interval):
            try:
                services.campaigns_tick()
            except Exception as exc:  # a tick that fails is retried by the next one
                self.errors += 1
                log(f"tick failed: {exc}")
            finally:
                connection.close()

    def __enter__(self) -> Ticker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


class Watch:
    """Polls a campaign: counts, and whether (and since when) it showed the provider pause."""

    def __init__(self, campaign_id: int) -> None:
        self.campaign_id = campaign_id
        self.paused_seen_at: datetime | None = None
        self.paused_since: datetime | None = None
        self.state_seen: list[str] = []

    def poll(self) -> Any:
        from comms.campaigns.models import Campaign
        from comms.campaigns.selectors import campaign_state

        campaign = Campaign.objects.get(pk=self.campaign_id)
        state = campaign_state(campaign)
        if not self.state_seen or self.state_seen[-1] != state:
            self.state_seen.append(state)
            log(f"campaign {self.campaign_id}: {state}")
        if campaign.provider_paused_since is not None and self.paused_seen_at is None:
            from django.utils import timezone

            self.paused_seen_at = timezone.now()
            self.paused_since = campaign.provider_paused_since
        return campaign


def wait_finished(watch: Watch, timeout: float, children: list[Child]) -> Any:
    from django.db.models import Count

    from comms.campaigns.models import CampaignStatus, Delivery

    finished = {CampaignStatus.SENT, CampaignStatus.SENT_WITH_FAILURES, CampaignStatus.FAILED}
    deadline = time.monotonic() + timeout
    last = 0.0
    while True:
        campaign = watch.poll()
        if campaign.status in finished:
            return campaign
        if time.monotonic() > deadline:
            raise TimeoutError(f"campaign {campaign.pk} not finished after {timeout:.0f}s")
        for child in children:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited during the run:\n{child.tail()}")
        if time.monotonic() - last > 5:
            counts = dict(
                Delivery.objects.filter(campaign_id=campaign.pk)
                .values_list("status")
                .annotate(n=Count("id"))
                .values_list("status", "n")
            )
            log(f"campaign {campaign.pk}: {counts}")
            last = time.monotonic()
        time.sleep(0.2)


def summary(campaign: Any, fake_messages: list[dict[str, Any]]) -> dict[str, Any]:
    from django.db.models import Count

    from comms.campaigns.models import Delivery

    by_status = dict(
        Delivery.objects.filter(campaign_id=campaign.pk)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    check = check_fake(fake_messages, campaign.pk)
    return {
        "campaign_id": campaign.pk,
        "status": campaign.status,
        "status_detail": campaign.status_detail,
        "by_status": by_status,
        "fake_received": check["received"],
        "duplicates": check["duplicates"],
        "lost": check["sent_not_received"] + by_status.get("queued", 0) + by_status.get("deferred", 0),
        "received_not_sent": check["received_not_sent"],
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bin/bench-outage", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="contacts, so SMS per campaign")
    parser.add_argument("--outage", type=float, default=60, help="seconds LifeVision answers 503")
    parser.add_argument("--kill-after", type=float, default=20, help="kill -9 the workers this far in")
    parser.add_argument("--storm", type=float, default=30, help="seconds of the 429 storm")
    parser.add_argument("--storm-ratio", type=float, default=0.8, help="share of requests answered 429")
    parser.add_argument("--workers", type=int, default=2, help="dramatiq worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument("--batch-size", type=int, default=50, help="COMMS_SEND_BATCH_SIZE")
    parser.add_argument("--probe", type=float, default=2.0, help="COMMS_PROVIDER_PROBE_INTERVAL, seconds")
    parser.add_argument("--tick", type=float, default=5.0, help="seconds between scheduler ticks")
    parser.add_argument("--grant-processes", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per campaign")
    parser.add_argument("--output", type=Path, default=RESULTS / "outage.json")
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= 200_000:
        parser.error("--messages must be between 1 and 200,000")
    if not 0 < args.kill_after < args.outage:
        parser.error("--kill-after must lie inside the outage")
    if not 0 < args.storm_ratio < 1:
        parser.error("--storm-ratio must lie between 0 and 1")
    args.conn_max_age = 60
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    probe_at_start = cpu_probe()
    port = free_port()
    fake_url = f"http://127.0.0.1:{port}"
    env = bench_env(args, fake_url)
    env.update(
        {
            "COMMS_PROVIDER_PROBE_INTERVAL": f"{args.probe}s",
            "COMMS_SEND_BACKOFF_MAX": "10s",
            "COMMS_SEND_RETRY_WINDOW": "1h",
            "COMMS_SEND_SWEEP_AFTER_SECONDS": "20",
        }
    )
    os.environ.update(env)
    child_env = {**os.environ, **env}
    log_dir = Path(tempfile.mkdtemp(prefix="comms-bench-outage-"))

    log(f"fresh database {DB_NAME} and Redis {REDIS_URL}")
    reset_state()
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    brand, purpose, contact_ids = make_brand("outagefit", "OutageFit", args.messages, 0)
    began = time.perf_counter()
    granted = grant_all(purpose.pk, contact_ids, args.grant_processes)
    log(f"{granted} consent grants through the ledger in {time.perf_counter() - began:.1f}s")

    from comms.campaigns import services

    children: list[Child] = []
    result: dict[str, Any] = {}
    try:
        fake_child = start_fake_lifevision(
            port, env["LIFEVISION_API_KEY"], env["LIFEVISION_WEBHOOK_SECRET"], child_env, log_dir
        )
        children.append(fake_child)
        fake = Fake(fake_url)
        wait_for("the fake LifeVision", fake.answers, 30, children)
        workers = start_workers(args.workers, args.threads, child_env, log_dir, "workers-1")
        children.append(workers)
        wait_for("the workers", lambda: workers_polling() >= args.workers, 60, children)

        with Ticker(args.tick):
            # 1. the outage, with every worker killed in the middle of it
            log(
                f"outage: LifeVision down for {args.outage:.0f}s, workers killed after {args.kill_after:.0f}s"
            )
            control(fake, "outage", {"status": 503})
            down_at = timezone.now()
            campaign = create_campaign(brand, purpose, "during an outage")
            watch = Watch(campaign.pk)
            services.campaign_send_now(campaign=campaign)
            while (timezone.now() - down_at).total_seconds() < args.kill_after:
                watch.poll()
                time.sleep(0.2)
            log("kill -9 of every worker process")
            kill_hard(workers)
            children.remove(workers)
            killed_at = timezone.now()
            time.sleep(2)
            workers = start_workers(args.workers, args.threads, child_env, log_dir, "workers-2")
            children.append(workers)
            while (timezone.now() - down_at).total_seconds() < args.outage:
                watch.poll()
                time.sleep(0.2)
            control(fake, "outage", {"seconds": 0})
            recovered_at = timezone.now()
            log("LifeVision is back")
            outage_campaign = wait_finished(watch, args.timeout, children)
            messages, _ = fake.all_messages()
            outage = summary(outage_campaign, messages)
            outage.update(
                {
                    "outage_s": round((recovered_at - down_at).total_seconds(), 1),
                    "workers_killed_at_s": round((killed_at - down_at).total_seconds(), 1),
                    "showed_paused_provider_unavailable": watch.paused_seen_at is not None,
                    "paused_seen_after_s": round((watch.paused_seen_at - down_at).total_seconds(), 1)
                    if watch.paused_seen_at
                    else None,
                    "states_seen": watch.state_seen,
                    "finished_after_recovery_s": round(
                        (outage_campaign.finished_at - recovered_at).total_seconds(), 2
                    ),
                }
            )
            log(f"outage: {outage['status']} {outage['finished_after_recovery_s']}s after recovery")

            # 2. the 429 storm
            log(f"429 storm: {args.storm_ratio:.0%} of requests for {args.storm:.0f}s")
            control(fake, "throttle", {"ratio": args.storm_ratio, "retry_after": 1})
            storm_at = timezone.now()
            campaign = create_campaign(brand, purpose, "during a 429 storm")
            storm_watch = Watch(campaign.pk)
            services.campaign_send_now(campaign=campaign)
            timer = threading.Timer(args.storm, lambda: control(fake, "throttle", {"ratio": 0}))
            timer.start()
            try:
                storm_campaign = wait_finished(storm_watch, args.timeout, children)
            finally:
                timer.join()
            storm_ended_at = storm_at + timedelta(seconds=args.storm)
            messages, _ = fake.all_messages()
            storm = summary(storm_campaign, messages)
            elapsed = (storm_campaign.finished_at - storm_at).total_seconds()
            storm.update(
                {
                    "storm_s": args.storm,
                    "storm_ratio": args.storm_ratio,
                    "elapsed_s": round(elapsed, 2),
                    "finished_before_storm_end": storm_campaign.finished_at < storm_ended_at,
                    "sms_per_s": round(storm["by_status"].get("sent", 0) / elapsed, 1) if elapsed else 0,
                }
            )
            log(f"429 storm: {storm['status']} in {storm['elapsed_s']}s")
        raw = fake.session.get(f"{fake.base_url}/_fake/messages", timeout=120).json()
        result = {
            "benchmark": "outage",
            "messages": args.messages,
            "workers": args.workers,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "probe_interval_s": args.probe,
            "outage": outage,
            "storm": storm,
            "fake_requests": raw["requests"],
            "fake_failed_requests": raw.get("failed_requests"),
            "worker_log_errors": sum(worker_errors(c) for c in children if c.name.startswith("workers")),
            "logs": str(log_dir),
            "machine": machine(probe_at_start),
        }
    finally:
        for child in reversed(children):
            child.stop()

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    o, s = result["outage"], result["storm"]
    print(
        table(
            [
                ("benchmark", "outage and 429 storm (fake LifeVision, dramatiq workers on Redis)"),
                ("machine", f"{result['machine']['cpu']}, {result['machine']['cores']} cores"),
                ("load at start", result["machine"]["load_average_at_start"]),
                ("workers × threads, batch", f"{args.workers} × {args.threads}, {args.batch_size}"),
                ("messages per campaign", args.messages),
                (
                    "outage",
                    f"{o['outage_s']} s of 503, kill -9 of all workers at {o['workers_killed_at_s']} s",
                ),
                (
                    "  showed paused",
                    f"{o['showed_paused_provider_unavailable']} (after {o['paused_seen_after_s']} s)",
                ),
                ("  ended", f"{o['status']} {o['by_status']}"),
                ("  FINISHED AFTER RECOVERY", f"{o['finished_after_recovery_s']} s"),
                ("  lost / duplicated", f"{o['lost']} / {o['duplicates']}"),
                (
                    "429 storm",
                    f"{s['storm_ratio']:.0%} of requests for {s['storm_s']:.0f} s, Retry-After 1 s",
                ),
                ("  ended", f"{s['status']} {s['by_status']} in {s['elapsed_s']} s ({s['sms_per_s']} SMS/s)"),
                ("  lost / duplicated", f"{s['lost']} / {s['duplicates']}"),
                ("fake requests (failed)", f"{result['fake_requests']} ({result['fake_failed_requests']})"),
                ("worker log errors", result["worker_log_errors"]),
                (
                    "written",
                    args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output,
                ),
            ]
        )
    )
    ok = all(
        part["status"] == "sent"
        and part["lost"] == 0
        and part["duplicates"] == 0
        and part["received_not_sent"] == 0
        and part["fake_received"] == args.messages
        for part in (o, s)
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
