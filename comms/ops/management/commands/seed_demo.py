from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from comms.ops.demo import seed_demo


class Command(BaseCommand):
    help = "Seed demo brands, purposes, contacts and ledger events (does nothing if already seeded)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contacts-per-brand", type=int, default=20)

    def handle(self, *args: Any, **options: Any) -> None:
        result = seed_demo(contacts_per_brand=options["contacts_per_brand"])
        if result.created:
            self.stdout.write(f"seeded {result.contacts} contacts and {result.events} ledger events")
        else:
            self.stdout.write("demo data already present")
