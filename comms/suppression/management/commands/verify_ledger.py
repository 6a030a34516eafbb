from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from comms.suppression.selectors import ledger_verify


class Command(BaseCommand):
    help = "Recompute the ledger's hash chains; exit 1 and name the first broken event if any."

    def handle(self, *args: Any, **options: Any) -> None:
        result = ledger_verify()
        self.stdout.write(f"events checked: {result.events_checked} in {result.chains} chain(s)")
        if result.first_broken:
            broken = result.first_broken
            raise CommandError(
                f"ledger BROKEN at event {broken.event_id} (chain {broken.chain}, seq {broken.seq}): {broken.problem}"
            )
        if result.evidence_mismatches:
            raise CommandError(
                f"evidence rows changed after sealing for events: {result.evidence_mismatches}"
            )
        if result.checkpoint_problem:
            raise CommandError(result.checkpoint_problem)
        self.stdout.write(self.style.SUCCESS("ledger OK"))
