"""The zero-setup database (SQLite, what ``bin/run`` uses without configuration) keeps the
ledger's append-only triggers after every migration: a migration that alters the events table
makes SQLite copy it into a new table, which drops the triggers on the old one (it happened;
``suppression/0019`` makes them again). The suite runs on PostgreSQL, so this test migrates a
fresh SQLite file in a child process and then tries to change an event there."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "ledger.sqlite3"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "DATABASE_MIGRATE_URL", "REDIS_URL")
    }
    env.update(COMMS_ENV="development", DATABASE_URL=f"sqlite:///{path}", DJANGO_SETTINGS_MODULE="comms.settings")
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return path


def test_every_ledger_table_keeps_its_triggers_after_all_migrations(migrated: Path) -> None:
    with sqlite3.connect(migrated) as db:
        triggers = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {
        "consentevent_no_update",
        "consentevent_no_delete",
        "purposenotice_no_update",
        "purposenotice_no_delete",
        "suppression_no_delete",
        "suppression_lift_only",
        "suppression_chainhead_no_delete",
        "suppression_consentevidence_no_delete",
    } <= triggers


def test_an_event_cannot_be_changed_or_deleted_on_sqlite(migrated: Path) -> None:
    db = sqlite3.connect(migrated)
    try:
        db.execute(
            "INSERT INTO suppression_consentevent (chain, seq, address_key, channel, action, basis, source,"
            " actor, recorded_by, pending_confirmation, opt_out_offered, reason, occurred_at, recorded_at,"
            " evidence_hash, prev_hash, hash) VALUES (0, 1, '', 'email', 'withdraw', '', 'api', 'self', '',"
            " 0, 0, '', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '', 'genesis', 'h1')"
        )
        for statement in (
            "UPDATE suppression_consentevent SET action = 'grant'",
            "DELETE FROM suppression_consentevent",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                db.execute(statement)
        assert db.execute("SELECT action FROM suppression_consentevent").fetchall() == [("withdraw",)]
    finally:
        db.close()
