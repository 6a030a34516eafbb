"""``manage.py import_consents FILE.csv [--rejects F]``: bring an existing member system's
consents into the ledger (bulk appends, idempotent by ``external_key``).

Columns: ``external_key`` (required, the source system's id for the fact), the contact as
``contact_id`` or ``brand`` + ``contact_external_id``, ``channel`` (email|sms), ``purpose`` (key;
empty on a withdrawal = every purpose of the channel), ``action`` (grant|withdraw, default
grant), ``basis`` (consent|soft_opt_in), ``source`` (default import), ``notice_version`` (default
the current one), ``occurred_at`` (ISO 8601 with time zone, required), ``opt_out_offered``
(true/false), and evidence ``ip``, ``user_agent``, ``proof_sha256``. Good rows are appended, bad
rows reported by line and field (and written to ``--rejects``); the exit status is 1 if any row
was bad.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from comms.errors import InvalidInput
from comms.suppression import services
from comms.suppression.services import ConsentImportRow, Evidence, Principal

REQUIRED = {"external_key", "channel", "occurred_at"}
# Rows parsed and handed over per call (the service splits them into transactions, and over
# worker threads when the ledger has several chains).
CHUNK = services.IMPORT_CHUNK * 20


def _row(raw: dict[str, str]) -> ConsentImportRow:
    value = {name: (text or "").strip() for name, text in raw.items() if name}
    occurred: dt.datetime | None = None
    if value.get("occurred_at"):
        try:
            occurred = dt.datetime.fromisoformat(value["occurred_at"])
        except ValueError:
            raise InvalidInput(
                "occurred_at", f"{value['occurred_at']!r} is not a date-time (ISO 8601)"
            ) from None
        if occurred.tzinfo is None:
            raise InvalidInput("occurred_at", "needs a time zone, e.g. 2024-05-01T10:00:00+02:00")
    contact_id = value.get("contact_id") or ""
    if contact_id and not contact_id.isdigit():
        raise InvalidInput("contact_id", f"{contact_id!r} is not a contact id")
    version = value.get("notice_version") or ""
    if version and not version.isdigit():
        raise InvalidInput("notice_version", f"{version!r} is not a version number")
    opt_out = (value.get("opt_out_offered") or "false").lower()
    if opt_out not in ("true", "false", "1", "0", "yes", "no"):
        raise InvalidInput("opt_out_offered", "must be true or false")
    evidence = Evidence(
        ip=value.get("ip") or None,
        user_agent=value.get("user_agent", ""),
        proof_sha256=value.get("proof_sha256", ""),
    )
    return ConsentImportRow(
        external_key=value.get("external_key", ""),
        contact_id=int(contact_id) if contact_id else None,
        brand=value.get("brand", ""),
        contact_external_id=value.get("contact_external_id", ""),
        channel=value.get("channel", ""),
        purpose=value.get("purpose", ""),
        action=value.get("action") or "grant",
        basis=value.get("basis") or "consent",
        source=value.get("source") or "import",
        notice_version=int(version) if version else None,
        occurred_at=occurred,
        opt_out_offered=opt_out in ("true", "1", "yes"),
        evidence=None if evidence.is_empty() else evidence,
    )


def _advance(progress: tqdm[Any]) -> Callable[[int], None]:
    def advance(rows: int) -> None:
        progress.update(rows)

    return advance


class Command(BaseCommand):
    help = "Import consents (grants and withdrawals) from CSV into the ledger, idempotent by external_key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--rejects", type=Path, help="write the bad rows here, with line, field and reason"
        )
        parser.add_argument("--recorded-by", default="import_consents", help="who records the events")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = REQUIRED - set(reader.fieldnames or [])
            if missing:
                raise CommandError(f"{path}: missing column(s): {', '.join(sorted(missing))}")
            raw_rows = list(reader)
        principal = Principal(actor="staff", recorded_by=options["recorded_by"])
        rejects: list[tuple[int, dict[str, str], str, str]] = []
        created = unchanged = 0
        with tqdm(total=len(raw_rows), unit="row", file=sys.stderr, disable=None) as progress:
            for start in range(0, len(raw_rows), CHUNK):
                parsed: list[ConsentImportRow] = []
                lines: list[int] = []
                for offset, raw in enumerate(raw_rows[start : start + CHUNK]):
                    line = start + offset + 2  # the header is line 1
                    try:
                        parsed.append(_row(raw))
                        lines.append(line)
                    except InvalidInput as exc:
                        rejects.append((line, raw, exc.field or "", exc.message))
                progress.update(min(CHUNK, len(raw_rows) - start) - len(parsed))  # unparsable: done
                result = services.consents_import(rows=parsed, principal=principal, progress=_advance(progress))
                created += result.created
                unchanged += result.unchanged
                for error in result.errors:
                    line = lines[error.index]
                    rejects.append((line, raw_rows[line - 2], error.field, error.message))
        if created and connection.vendor == "postgresql":
            # Fresh statistics, so the gate's plans see the new size at once (autovacuum would,
            # later).
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE suppression_consentevent, suppression_consentstate")
        rejects.sort(key=lambda reject: reject[0])
        for line, _, field_name, message in rejects:
            self.stderr.write(f"line {line}: {field_name}: {message}")
        if options["rejects"] and rejects:
            with options["rejects"].open("w", newline="", encoding="utf-8") as out:
                names = list(raw_rows[0].keys()) if raw_rows else []
                writer = csv.DictWriter(
                    out, fieldnames=["line", "field", "error", *names], extrasaction="ignore"
                )
                writer.writeheader()
                for line, raw, field_name, message in rejects:
                    writer.writerow({"line": line, "field": field_name, "error": message, **raw})
        self.stdout.write(f"created {created}, unchanged {unchanged}, rejected {len(rejects)}")
        if rejects:
            raise CommandError(f"{len(rejects)} row(s) rejected")
