from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from comms.rights.services import retention_run


class Command(BaseCommand):
    help = (
        "Apply the retention policy now (the scheduler runs it nightly): erase guests who never "
        "became members after COMMS_GUEST_RETENTION_DAYS without a visit or a consent, keeping "
        "their suppressions, and drop evidence IP addresses older than "
        "COMMS_EVIDENCE_IP_RETENTION_DAYS. Prints what it did."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would be done, change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = retention_run(dry_run=options["dry_run"])
        self.stdout.write(report.summary())
        if report.errors:
            raise CommandError(f"{len(report.errors)} erasure(s) failed")
