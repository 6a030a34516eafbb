from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from comms.errors import InvalidInput
from comms.suppression.models import ChainHead, LedgerLayout
from comms.suppression.services import ledger_chains_set


class Command(BaseCommand):
    help = (
        "Show how many hash chains the ledger runs on, or change it. Every append follows the "
        "ledger's own count (a contact's events go to chain contact id mod the count); a change "
        "waits for the appends in flight and applies to every process from its commit on. "
        "The release step runs it with --from-settings (COMMS_LEDGER_CHAINS)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--set", type=int, metavar="N", help="run the ledger on N chains from now on")
        what.add_argument(
            "--from-settings", action="store_true", help="set it to COMMS_LEDGER_CHAINS (the release step)"
        )
        parser.add_argument(
            "--database",
            default=None,
            help="the database alias to change it as (default: the owner's when DATABASE_MIGRATE_URL is set)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = settings.LEDGER_CHAINS if options["from_settings"] else options["set"]
        using = options["database"] or settings.MIGRATE_DATABASE
        if wanted is not None:
            try:
                before = ledger_chains_set(chains=wanted, set_by=self._who(options), using=using)
            except InvalidInput as exc:
                raise CommandError(f"--set: {exc.message}") from None
            if before == wanted:
                self.stdout.write(f"ledger chains: {wanted} (unchanged)")
            else:
                self.stdout.write(f"ledger chains: {wanted} from now on (was {before or 'not recorded'})")
            return
        layout = LedgerLayout.objects.using(using).filter(pk=1).first()
        if layout is None:
            self.stdout.write(
                f"ledger chains: not recorded yet; the first append records COMMS_LEDGER_CHAINS "
                f"({settings.LEDGER_CHAINS})"
            )
        else:
            self.stdout.write(
                f"ledger chains: {layout.chains} (set {layout.set_at:%Y-%m-%d %H:%M:%S %Z} by {layout.set_by})"
            )
            if layout.chains != settings.LEDGER_CHAINS:
                self.stdout.write(
                    f"COMMS_LEDGER_CHAINS here is {settings.LEDGER_CHAINS}: appends follow the ledger's count"
                )
        for head in ChainHead.objects.using(using).order_by("chain"):
            self.stdout.write(f"  chain {head.chain}: {head.seq} events")

    @staticmethod
    def _who(options: dict[str, Any]) -> str:
        return "COMMS_LEDGER_CHAINS" if options["from_settings"] else "manage.py ledger_chains --set"
