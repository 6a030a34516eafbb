from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from comms.contacts.models import Contact
from comms.contacts.services import visit_record
from comms.errors import DomainError, InvalidInput

COLUMNS = {"brand", "contact_external_id", "kind", "occurred_at", "centre", "external_id"}
REQUIRED = {"brand", "contact_external_id", "kind", "occurred_at"}


def _row(row: dict[str, str]) -> tuple[int, str]:
    """Record one visit through the service (which plans the brand's follow-ups); returns the
    visit's id and whether it was new."""
    brand, contact_id = (row.get("brand") or "").strip(), (row.get("contact_external_id") or "").strip()
    contact = Contact.objects.select_related("brand").filter(brand__key=brand, external_id=contact_id).first()
    if contact is None:
        raise InvalidInput("contact_external_id", f"no contact {contact_id!r} in brand {brand!r}")
    raw = (row.get("occurred_at") or "").strip()
    try:
        occurred_at = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("occurred_at", f"{raw!r} is not a date-time (ISO 8601)") from None
    if occurred_at.tzinfo is None:
        raise InvalidInput("occurred_at", "needs a time zone, e.g. 2026-05-01T10:00:00+02:00")
    visit, created = visit_record(
        contact=contact,
        kind=(row.get("kind") or "").strip(),
        occurred_at=occurred_at,
        centre=(row.get("centre") or "").strip() or None,
        external_id=(row.get("external_id") or "").strip() or None,
    )
    return visit.pk, "created" if created else "unchanged"


class Command(BaseCommand):
    help = (
        "Import visits (trial sessions, check-ins, class bookings) from a CSV file with the columns "
        + ", ".join(sorted(COLUMNS))
        + ". Idempotent on (contact, external_id). Each new trial session or class booking plans "
        "the brand's follow-ups, exactly as POST /contacts/{id}/visits does."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the CSV file, or - for standard input")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["path"]
        try:
            handle = sys.stdin if path == "-" else Path(path).open(newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            reader = csv.DictReader(handle)
            missing = REQUIRED - set(reader.fieldnames or [])
            if missing:
                raise CommandError(f"{path}: missing column(s): {', '.join(sorted(missing))}")
            rows = list(reader)
        counts = {"created": 0, "unchanged": 0}
        rejected: list[str] = []
        for line, row in enumerate(rows, start=2):
            try:
                _, outcome = _row(row)
            except InvalidInput as exc:
                rejected.append(f"line {line}: {exc.field}: {exc.message}")
                continue
            except DomainError as exc:
                rejected.append(f"line {line}: {exc.message}")
                continue
            counts[outcome] += 1
        self.stdout.write(
            f"created {counts['created']}, unchanged {counts['unchanged']}, rejected {len(rejected)}"
        )
        for message in rejected[:20]:
            self.stderr.write(message)
        if rejected:
            raise CommandError(f"{len(rejected)} row(s) rejected; the other rows were imported")
