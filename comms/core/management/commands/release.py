from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "The release step (Procfile): migrate as the owning role (DATABASE_MIGRATE_URL), then grant "
        "the service role (DATABASE_URL) exactly what the code needs, and set the ledger's count of "
        "chains to COMMS_LEDGER_CHAINS. Without DATABASE_MIGRATE_URL (local runs) it migrates and "
        "sets the count as DATABASE_URL."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command(
            "migrate", database=settings.MIGRATE_DATABASE, interactive=False, verbosity=options["verbosity"]
        )
        if settings.MIGRATE_DATABASE != "default":
            call_command("db_roles", database=settings.MIGRATE_DATABASE, stdout=self.stdout)
        else:
            self.stdout.write("DATABASE_MIGRATE_URL is not set: migrated as DATABASE_URL, no grants")
        # The ledger's count of chains, as the owner: every process appends by it from here on.
        call_command("ledger_chains", from_settings=True, database=settings.MIGRATE_DATABASE, stdout=self.stdout)
