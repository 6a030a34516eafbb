from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from comms.suppression.services import ledger_checkpoint


class Command(BaseCommand):
    help = "Seal every chain head into a new ledger checkpoint."

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = ledger_checkpoint()
        self.stdout.write(
            f"checkpoint {checkpoint.pk}: {checkpoint.hash} over {len(checkpoint.heads)} chain(s)"
        )
