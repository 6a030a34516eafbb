from __future__ import annotations

from argparse import ArgumentTypeError
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from comms.suppression.selectors import ledger_verify, ledger_verify_anchors
from comms.suppression.state import state_verify


def _timestamp(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(f"not an ISO timestamp: {value!r}") from None
    if moment.tzinfo is None:
        raise ArgumentTypeError("give the time zone too, e.g. 2026-11-25T10:00:00+01:00")
    return moment


class Command(BaseCommand):
    help = (
        "Recompute the ledger's hash chains; exit 1 and name the first broken event if any. With "
        "--against FILE, also check the database against the signed anchors in FILE (the anchor "
        "file, or the JSON log) and name the first checkpoint it no longer matches. With --state, "
        "also refold every contact's events and name each consent state row that differs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--against",
            metavar="FILE",
            type=Path,
            help="anchor lines written by ledger_checkpoint (COMMS_LEDGER_ANCHOR_FILE, or a log)",
        )
        parser.add_argument(
            "--until",
            metavar="TIMESTAMP",
            type=_timestamp,
            help="with --against: skip anchors made after this ISO time (a point-in-time restore)",
        )
        parser.add_argument(
            "--state",
            action="store_true",
            help="also compare the consent state (the gate's read model) with a refold of the ledger",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        problems: list[str] = []
        result = ledger_verify()
        self.stdout.write(f"events checked: {result.events_checked} in {result.chains} chain(s)")
        if result.first_broken:
            broken = result.first_broken
            problems.append(
                f"ledger BROKEN at event {broken.event_id} (chain {broken.chain}, seq {broken.seq}): {broken.problem}"
            )
        if result.evidence_mismatches:
            problems.append(f"evidence rows changed after sealing for events: {result.evidence_mismatches}")
        if result.checkpoint_problem:
            problems.append(result.checkpoint_problem)
        if options["state"]:
            problems += self._state()
        if options["against"] is not None:
            problems += self._against(options["against"], options["until"])
        if problems:
            for problem in problems[1:]:
                self.stderr.write(problem)
            raise CommandError(problems[0])
        self.stdout.write(self.style.SUCCESS("ledger OK"))

    def _state(self) -> list[str]:
        checked, mismatches = state_verify()
        self.stdout.write(f"consent state checked: {checked} contact(s)")
        if not mismatches:
            return []
        # Every differing row is named; the first line says how many there are.
        return [f"consent state differs from the ledger in {len(mismatches)} row(s)"] + [
            f"state: {mismatch.describe()}" for mismatch in mismatches
        ]

    def _against(self, path: Path, until: datetime | None) -> list[str]:
        secret = settings.LEDGER_ANCHOR_SECRET
        if not secret:
            raise CommandError("COMMS_LEDGER_ANCHOR_SECRET is not set: anchors cannot be checked")
        try:
            with path.open(encoding="utf-8", errors="replace") as lines:
                anchors = ledger_verify_anchors(lines=lines, secret=secret, until=until)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        self.stdout.write(f"anchors checked: {anchors.anchors_checked} from {path}")
        if anchors.first_mismatch is None:
            return []
        return [f"anchors: {anchors.first_mismatch} ({anchors.mismatches} anchor(s) do not match)"]
