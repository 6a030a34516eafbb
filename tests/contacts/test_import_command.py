"""`manage.py import_contacts`: the CSV import imports the good rows, reports and writes out the bad
ones (line and field), fails when any row is rejected, and is idempotent on re-run."""

from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from comms.contacts.models import Contact
from comms.suppression.models import ConsentEvent, Suppression

HEADER = "brand,kind,external_id,first_name,email,mobile,birth_date,tags,purchase_at,home_centre\n"
GOOD = [
    "fit24,member,m-1,Kari,Kari@Example.no,412 34 567,1990-05-01,vip;gold,2026-01-01T10:00:00+01:00,oslo\n",
    "fit24,guest,g-1,Ola,,,,,,\n",
]
BAD = [
    "fit24,member,m-2,Per,,22 22 22 22,,,,\n",  # landline
    "fit24,member,m-3,Pål,,,1990-13-45,,,\n",  # not a date
    "nope,member,m-4,Siri,,,,,,\n",  # unknown brand
    "fit24,member,m-5,Liv,,,,,2026-01-01T10:00:00,\n",  # naive date-time
    "fit24,member,m-6,Ada,,,,,0001-01-01T00:30:00+01:00,\n",  # cannot be stored
]


def write(tmp_path: Path, lines: list[str], name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text("".join(lines), encoding="utf-8")
    return path


def run(path: Path, *extra: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_contacts", str(path), "--no-progress", *extra, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_good_rows_are_imported_normalised(db, brand, tmp_path):
    out, _ = run(write(tmp_path, [HEADER, *GOOD]))
    assert out.strip() == "created 2, updated 0, unchanged 0, rejected 0"
    kari = Contact.objects.get(external_id="m-1")
    assert (kari.email, kari.mobile, kari.first_name) == ("kari@example.no", "+4741234567", "Kari")
    assert str(kari.birth_date) == "1990-05-01"
    assert sorted(kari.tags.values_list("name", flat=True)) == ["gold", "vip"]
    assert kari.home_centre is not None and kari.home_centre.key == "oslo"
    assert kari.purchase_at is not None
    ola = Contact.objects.get(external_id="g-1")
    assert (ola.kind, ola.email, ola.mobile) == ("guest", None, None)


def test_a_re_run_is_idempotent_and_a_changed_row_updates(db, brand, tmp_path):
    path = write(tmp_path, [HEADER, *GOOD])
    run(path)
    stamps = list(Contact.objects.order_by("id").values_list("id", "updated_at"))
    out, _ = run(path)
    assert out.strip() == "created 0, updated 0, unchanged 2, rejected 0"
    assert list(Contact.objects.order_by("id").values_list("id", "updated_at")) == stamps

    changed = write(tmp_path, [HEADER, GOOD[0].replace("Kari,", "Kari Anne,"), GOOD[1]], "changed.csv")
    out, _ = run(changed)
    assert out.strip() == "created 0, updated 1, unchanged 1, rejected 0"
    assert Contact.objects.get(external_id="m-1").first_name == "Kari Anne"
    assert Contact.objects.count() == 2


@pytest.mark.parametrize("batch_size", ["500", "1", "2"])
def test_bad_rows_are_reported_with_line_and_field_and_written_to_rejects(db, brand, tmp_path, batch_size):
    lines = [HEADER, GOOD[0], *BAD, GOOD[1]]
    rejects = tmp_path / "rejects.csv"
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match=r"5 row\(s\) rejected"):
        call_command(
            "import_contacts",
            str(write(tmp_path, lines)),
            "--no-progress",
            "--batch-size",
            batch_size,
            "--rejects",
            str(rejects),
            stdout=out,
            stderr=err,
        )
    # The good rows are in, the bad ones are not.
    assert out.getvalue().strip() == "created 2, updated 0, unchanged 0, rejected 5"
    assert set(Contact.objects.values_list("external_id", flat=True)) == {"m-1", "g-1"}
    expected = {
        ("3", "mobile"),
        ("4", "birth_date"),
        ("5", "brand"),
        ("6", "purchase_at"),
        ("7", "purchase_at"),
    }
    reported = [line for line in err.getvalue().splitlines() if line.startswith("line ")]
    assert len(reported) == 5, err.getvalue()
    for line, field in expected:
        assert any(r.startswith(f"line {line}: {field}: ") for r in reported), reported

    with rejects.open(newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert {(row["line"], row["field"]) for row in written} == expected
    assert {row["external_id"] for row in written} == {"m-2", "m-3", "m-4", "m-5", "m-6"}
    assert all(row["error"] for row in written)
    assert next(row for row in written if row["line"] == "3")["mobile"] == "22 22 22 22"


def test_a_rejected_row_does_not_stop_a_re_run_from_being_idempotent(db, brand, tmp_path):
    path = write(tmp_path, [HEADER, GOOD[0], BAD[0]])
    with pytest.raises(CommandError):
        run(path)
    with pytest.raises(CommandError, match=r"1 row\(s\) rejected"):
        run(path)
    assert Contact.objects.count() == 1
    assert Contact.objects.get(external_id="m-1").first_name == "Kari"


def test_the_import_never_touches_the_ledger(db, brand, purpose, staff, tmp_path):
    from comms.suppression import services as ledger

    run(write(tmp_path, [HEADER, *GOOD]))
    kari = Contact.objects.get(external_id="m-1")
    ledger.consent_withdraw(contact=kari, channel=None, purpose=None, source="sms_keyword", principal=staff)
    before = (ConsentEvent.objects.count(), list(Suppression.objects.values_list("id", "lifted_at")))
    run(write(tmp_path, [HEADER, GOOD[0].replace("Kari,", "Kari Anne,"), GOOD[1]], "again.csv"))
    assert (ConsentEvent.objects.count(), list(Suppression.objects.values_list("id", "lifted_at"))) == before


def test_duplicate_external_ids_in_one_file_are_rejected(db, brand, tmp_path):
    with pytest.raises(CommandError, match=r"1 row\(s\) rejected"):
        run(write(tmp_path, [HEADER, GOOD[0], GOOD[0].replace("Kari,", "Other,")]))
    assert Contact.objects.get(external_id="m-1").first_name == "Kari"


def test_unknown_columns_are_ignored_with_a_note(db, brand, tmp_path):
    err = StringIO()
    call_command(
        "import_contacts",
        str(write(tmp_path, ["brand,kind,external_id,account_number\n", "fit24,member,m-9,123456\n"])),
        "--no-progress",
        stdout=StringIO(),
        stderr=err,
    )
    assert "ignoring unknown column(s): account_number" in err.getvalue()
    assert Contact.objects.filter(external_id="m-9").exists()


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("brand,kind,first_name\n", "external_id"),
        ("kind,external_id\n", "brand"),
        ("first_name\n", "brand, external_id, kind"),
        ("", "brand, external_id, kind"),
    ],
)
def test_a_missing_required_column_is_a_clear_error(db, brand, tmp_path, header, missing):
    path = write(tmp_path, [header, "x\n"] if header else [])
    with pytest.raises(CommandError, match=f"missing column\\(s\\): {missing}$"):
        run(path)
    assert not Contact.objects.exists()


def test_a_nonexistent_file_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match=r"cannot read .*nope\.csv: No such file or directory"):
        run(tmp_path / "nope.csv")


def test_a_bad_batch_size_is_a_clear_error(db, brand, tmp_path):
    with pytest.raises(CommandError, match="--batch-size"):
        run(write(tmp_path, [HEADER, *GOOD]), "--batch-size", "0")


def test_semicolon_delimited_files(db, brand, tmp_path):
    path = write(tmp_path, ["brand;kind;external_id;mobile\n", "fit24;member;m-1;41234567\n"])
    out, _ = run(path, "--delimiter", ";")
    assert out.strip() == "created 1, updated 0, unchanged 0, rejected 0"
    assert Contact.objects.get().mobile == "+4741234567"
