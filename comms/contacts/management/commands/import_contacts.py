from __future__ import annotations

import csv
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from comms.contacts.services import ContactInput, ImportResult, contacts_import
from comms.errors import InvalidInput

COLUMNS = {
    "brand",
    "kind",
    "external_id",
    "first_name",
    "last_name",
    "birth_date",
    "email",
    "mobile",
    "guardian_id",
    "home_centre",
    "tags",
    "purchase_at",
}
REQUIRED = {"brand", "kind", "external_id"}


def _row_input(row: dict[str, str]) -> ContactInput:
    data = ContactInput()
    for name, raw in row.items():
        if name not in COLUMNS:
            continue
        value = (raw or "").strip()
        if name == "birth_date":
            try:
                setattr(data, name, dt.date.fromisoformat(value) if value else None)
            except ValueError:
                raise InvalidInput("birth_date", f"{value!r} is not a date (YYYY-MM-DD)") from None
        elif name == "purchase_at":
            try:
                stamp = dt.datetime.fromisoformat(value) if value else None
            except ValueError:
                raise InvalidInput("purchase_at", f"{value!r} is not a date-time (ISO 8601)") from None
            if stamp is not None and stamp.tzinfo is None:
                raise InvalidInput("purchase_at", "needs a time zone, e.g. 2026-05-01T10:00:00+02:00")
            data.purchase_at = stamp
        elif name == "guardian_id":
            if value and not value.isdigit():
                raise InvalidInput("guardian_id", f"{value!r} is not a contact id")
            data.guardian_id = int(value) if value else None
        elif name == "tags":
            data.tags = [t for t in value.replace(";", ",").split(",") if t.strip()]
        else:
            setattr(data, name, value or None)
    return data


class Command(BaseCommand):
    help = (
        "Import contacts from a CSV file (header row; columns: " + ", ".join(sorted(COLUMNS)) + "). "
        "Idempotent by (brand, external_id); never changes consent or suppressions. "
        "Bad rows are reported (and written to --rejects) while good rows are imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the CSV file, or - for standard input")
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--rejects", help="write rejected rows with the reason to this CSV file")
        parser.add_argument("--delimiter", default=",")
        parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["path"]
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            handle = sys.stdin if path == "-" else Path(path).open(newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        with handle:
            reader = csv.DictReader(handle, delimiter=options["delimiter"])
            header = set(reader.fieldnames or [])
            missing = REQUIRED - header
            if missing:
                raise CommandError(f"{path}: missing column(s): {', '.join(sorted(missing))}")
            unknown = header - COLUMNS
            if unknown:
                self.stderr.write(f"ignoring unknown column(s): {', '.join(sorted(unknown))}")
            rows = list(reader)

        total = ImportResult()
        rejects: list[dict[str, str]] = []
        progress = tqdm(
            total=len(rows), unit="row", desc="importing", disable=options["no_progress"], file=sys.stderr
        )
        size = options["batch_size"]
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            inputs: list[ContactInput] = []
            positions: list[int] = []
            for offset, row in enumerate(chunk):
                line = start + offset + 2  # header is line 1
                try:
                    inputs.append(_row_input(row))
                    positions.append(line)
                except InvalidInput as exc:
                    rejects.append({**row, "line": str(line), "field": exc.field, "error": exc.message})
            result = contacts_import(rows=inputs, atomic=False)
            total.created += result.created
            total.updated += result.updated
            total.unchanged += result.unchanged
            for error in result.errors:
                row = chunk[positions[error.index] - start - 2]
                rejects.append(
                    {**row, "line": str(positions[error.index]), "field": error.field, "error": error.message}
                )
            progress.update(len(chunk))
        progress.close()

        self.stdout.write(
            f"created {total.created}, updated {total.updated}, unchanged {total.unchanged}, rejected {len(rejects)}"
        )
        for reject in rejects[:20]:
            self.stderr.write(f"line {reject['line']}: {reject['field']}: {reject['error']}")
        if len(rejects) > 20:
            self.stderr.write(f"… and {len(rejects) - 20} more")
        if rejects and options["rejects"]:
            fieldnames = list(dict.fromkeys([*rows[0].keys(), "line", "field", "error"]))
            with Path(options["rejects"]).open("w", newline="", encoding="utf-8") as out:
                writer = csv.DictWriter(out, fieldnames=fieldnames, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rejects)
            self.stderr.write(f"rejected rows written to {options['rejects']}")
        if rejects:
            raise CommandError(f"{len(rejects)} row(s) rejected; the other rows were imported")
