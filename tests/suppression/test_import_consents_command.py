"""``manage.py import_consents``: good rows land in the ledger, bad ones are reported by line
and field (and written to --rejects), and a re-run of the same file adds nothing."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from comms.contacts.models import Contact
from comms.suppression.gate import check
from comms.suppression.models import ConsentEvent, Purpose
from comms.suppression.selectors import ledger_verify
from comms.suppression.state import state_verify

HEADER = ["external_key", "contact_id", "channel", "purpose", "action", "basis", "occurred_at", "ip"]


def _write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def test_it_imports_good_rows_reports_bad_ones_and_adds_nothing_on_a_rerun(
    tmp_path: Path, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    ada, bo = make_contact(), make_contact()
    file = _write(
        tmp_path / "consents.csv",
        [
            [
                "old-1",
                str(ada.pk),
                "email",
                purpose.key,
                "grant",
                "consent",
                "2024-03-01T10:00:00+01:00",
                "192.0.2.1",
            ],
            ["old-2", str(bo.pk), "email", purpose.key, "grant", "consent", "2024-03-02T10:00:00+01:00", ""],
            [
                "old-3",
                str(bo.pk),
                "email",
                "no-such-purpose",
                "grant",
                "consent",
                "2024-03-02T10:00:00+01:00",
                "",
            ],
            ["old-4", str(ada.pk), "email", purpose.key, "grant", "consent", "yesterday", ""],
            ["old-5", str(bo.pk), "email", purpose.key, "withdraw", "", "2024-06-01T10:00:00+02:00", ""],
        ],
    )
    rejects = tmp_path / "rejects.csv"
    with pytest.raises(CommandError, match="2 row"):
        call_command("import_consents", str(file), "--rejects", str(rejects))
    assert ConsentEvent.objects.count() == 3
    assert check(contact=ada, channel="email", purpose=purpose).allowed
    assert check(contact=bo, channel="email", purpose=purpose).reason == "withdrawn"
    rejected = list(csv.DictReader(rejects.open()))
    assert [(r["line"], r["field"]) for r in rejected] == [("4", "purpose"), ("5", "occurred_at")]

    with pytest.raises(CommandError):  # the same two rows are still bad
        call_command("import_consents", str(file))
    assert ConsentEvent.objects.count() == 3
    assert ledger_verify().ok
    assert state_verify()[1] == []


def test_it_refuses_a_file_without_the_required_columns(tmp_path: Path) -> None:
    file = tmp_path / "bad.csv"
    file.write_text("contact_id,channel\n1,email\n")
    with pytest.raises(CommandError, match="missing column"):
        call_command("import_consents", str(file))
