"""The tail cannot be cut unnoticed: checkpoints are anchored outside the database (a signed line
in the log and in COMMS_LEDGER_ANCHOR_FILE) and `verify_ledger --against` holds the database to
them, naming the first checkpoint it no longer matches."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from comms.contacts.models import Contact
from comms.core.logs import JsonFormatter
from comms.suppression import anchors, selectors, services
from comms.suppression.models import ChainHead, ConsentEvent, LedgerCheckpoint, Purpose
from comms.suppression.services import Principal
from tests.db_owner import as_owner, triggers_disabled

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="tampering plays the owner, which needs PostgreSQL",
    ),
]


@pytest.fixture(autouse=True)
def one_chain(settings: Any) -> None:
    """These tests cut, reseal and delete the events of one chain (the first append records the
    count); tampering on several chains: ``test_chains_pg.py``."""
    settings.LEDGER_CHAINS = 1


@pytest.fixture
def anchor_file(settings: Any, tmp_path: Path) -> Path:
    settings.LEDGER_ANCHOR_FILE = str(tmp_path / "anchors" / "ledger.jsonl")
    return Path(settings.LEDGER_ANCHOR_FILE)


@pytest.fixture
def append(
    make_contact: Callable[..., Contact], purpose: Purpose, staff: Principal
) -> Callable[[], ConsentEvent]:
    def one() -> ConsentEvent:
        return services.consent_grant(
            contact=make_contact(),
            channel="email",
            purpose=purpose,
            basis="consent",
            source="front_desk",
            principal=staff,
        )

    return one


@pytest.fixture
def checkpoint(django_capture_on_commit_callbacks: Any) -> Callable[[], LedgerCheckpoint]:
    """A checkpoint as the scheduler makes it: committed, so its anchor is published."""

    def make() -> LedgerCheckpoint:
        with django_capture_on_commit_callbacks(execute=True):
            return services.ledger_checkpoint()

    return make


def _secret() -> str:
    secret = django_settings.LEDGER_ANCHOR_SECRET
    assert secret
    return str(secret)


def _verify_against(path: Path) -> str:
    out = StringIO()
    call_command("verify_ledger", "--against", str(path), stdout=out, stderr=StringIO())
    return out.getvalue()


def _verify_against_fails(path: Path) -> str:
    with pytest.raises(CommandError) as failure:
        _verify_against(path)
    return str(failure.value)


def _cut_tail(*, keep: int, checkpoints: list[LedgerCheckpoint]) -> None:
    """The attacker with the owner's rights: delete every event of chain 0 after seq ``keep``,
    the checkpoints that sealed them, and move the head back, so the chain verifies on its own."""
    with triggers_disabled("suppression_consentevent", "consentevent_append_only"):
        # The consent state points at events by foreign key: the attacker skips those checks too.
        as_owner("SET LOCAL session_replication_role = replica")
        as_owner("DELETE FROM suppression_consentevent WHERE chain = 0 AND seq > %s", [keep])
        as_owner("SET LOCAL session_replication_role = DEFAULT")
    with triggers_disabled("suppression_ledgercheckpoint", "ledgercheckpoint_append_only"):
        as_owner("DELETE FROM suppression_ledgercheckpoint WHERE id = ANY(%s)", [[c.pk for c in checkpoints]])
    last = ConsentEvent.objects.get(chain=0, seq=keep)
    ChainHead.objects.filter(chain=0).update(seq=keep, hash=last.hash)  # the service role may do this


def test_a_checkpoint_is_anchored_in_the_file_and_the_log_and_verifies(
    anchor_file: Path,
    append: Callable[[], ConsentEvent],
    checkpoint: Callable[[], LedgerCheckpoint],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for _ in range(3):
        append()
    with caplog.at_level(logging.INFO, logger="comms.suppression.services"):
        sealed = checkpoint()
    lines = anchor_file.read_text().splitlines()
    assert len(lines) == 1
    payload = json.loads(lines[0])
    assert (payload["kind"], payload["checkpoint"], payload["hash"]) == (
        anchors.ANCHOR_KIND,
        sealed.pk,
        sealed.hash,
    )
    assert payload["heads"] == {"0": [3, ConsentEvent.objects.get(seq=3).hash]}
    assert anchors.signature_ok(payload, _secret())
    # The JSON log carries the same signed anchor as data.
    (record,) = [r for r in caplog.records if r.getMessage().startswith(anchors.LOG_PREFIX)]
    assert json.loads(JsonFormatter().format(record))[anchors.LOG_FIELD] == payload

    append()  # the ledger goes on after the anchor
    output = _verify_against(anchor_file)
    assert "anchors checked: 1" in output
    assert "ledger OK" in output


def test_cutting_the_tail_and_its_checkpoint_passes_plain_verification_but_not_the_anchors(
    anchor_file: Path, append: Callable[[], ConsentEvent], checkpoint: Callable[[], LedgerCheckpoint]
) -> None:
    for _ in range(4):
        append()
    first = checkpoint()
    for _ in range(2):
        append()
    second = checkpoint()
    third = checkpoint()

    _cut_tail(keep=4, checkpoints=[second, third])

    assert selectors.ledger_verify().ok  # on its own the database looks fine
    call_command("verify_ledger", stdout=StringIO())
    error = _verify_against_fails(anchor_file)
    assert error.startswith(f"anchors: checkpoint {second.pk} (anchor on line 2) is missing from the database")
    assert "2 anchor(s) do not match" in error
    result = selectors.ledger_verify_anchors(
        lines=anchor_file.read_text().splitlines(), secret=_secret()
    )
    assert (result.ok, result.anchors_checked, result.mismatches) == (False, 3, 2)
    assert first.pk not in {second.pk, third.pk}


def test_cutting_the_tail_but_keeping_the_checkpoint_is_named_by_the_anchor(
    anchor_file: Path, append: Callable[[], ConsentEvent], checkpoint: Callable[[], LedgerCheckpoint]
) -> None:
    for _ in range(5):
        append()
    sealed = checkpoint()
    _cut_tail(keep=3, checkpoints=[])
    result = selectors.ledger_verify_anchors(
        lines=anchor_file.read_text().splitlines(), secret=_secret()
    )
    assert result.first_mismatch == (
        f"checkpoint {sealed.pk} (anchor on line 1) sealed chain 0 at seq 5, "
        "and that event is gone (the tail was cut)"
    )


def test_a_head_moved_back_behind_an_anchor_is_named(
    anchor_file: Path, append: Callable[[], ConsentEvent], checkpoint: Callable[[], LedgerCheckpoint]
) -> None:
    events = [append() for _ in range(3)]
    sealed = checkpoint()
    ChainHead.objects.filter(chain=0).update(seq=2, hash=events[1].hash)
    result = selectors.ledger_verify_anchors(
        lines=anchor_file.read_text().splitlines(), secret=_secret()
    )
    assert result.first_mismatch is not None
    assert result.first_mismatch.startswith(f"checkpoint {sealed.pk} (anchor on line 1)")
    assert "the chain head is back at 2" in result.first_mismatch


@pytest.mark.parametrize("forgery", ["edited", "other-secret", "unsigned"])
def test_a_tampered_anchor_line_is_reported_as_not_genuine(
    anchor_file: Path,
    append: Callable[[], ConsentEvent],
    checkpoint: Callable[[], LedgerCheckpoint],
    forgery: str,
) -> None:
    append()
    checkpoint()
    append()
    sealed = checkpoint()
    first, second = anchor_file.read_text().splitlines()
    payload = json.loads(second)
    if forgery == "edited":
        payload["heads"]["0"][0] = 1  # pretend the ledger was shorter than it was
    elif forgery == "other-secret":
        payload["sig"] = anchors.anchor_signature(payload, "someone-else-0123456789abcdefghijklmnop")
    else:
        del payload["sig"]
    anchor_file.write_text(f"{first}\n{anchors.anchor_line(payload)}\n")

    error = _verify_against_fails(anchor_file)
    assert f"anchor on line 2 (checkpoint {sealed.pk}): bad signature" in error


def test_anchors_are_read_back_from_a_json_log(
    tmp_path: Path,
    settings: Any,
    append: Callable[[], ConsentEvent],
    checkpoint: Callable[[], LedgerCheckpoint],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.LEDGER_ANCHOR_FILE = None
    append()
    with caplog.at_level(logging.INFO):
        sealed = checkpoint()
    formatter = JsonFormatter()
    log = tmp_path / "comms.log"
    log.write_text(
        '{"level": "INFO", "message": "something else"}\nnot json at all\n'
        + "".join(formatter.format(record) + "\n" for record in caplog.records)
    )
    output = _verify_against(log)
    assert "anchors checked: 1" in output
    ConsentEvent.objects.get(seq=1)  # still there
    assert LedgerCheckpoint.objects.filter(pk=sealed.pk).exists()


def test_a_file_without_anchors_is_an_error_not_a_pass(tmp_path: Path, db: Any) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "no anchors found" in _verify_against_fails(empty)


def test_without_a_secret_no_anchor_is_written(
    settings: Any, anchor_file: Path, append: Callable[[], ConsentEvent]
) -> None:
    settings.LEDGER_ANCHOR_SECRET = None
    append()
    assert services.ledger_anchor_publish(checkpoint=services.ledger_checkpoint()) is None
    assert not anchor_file.exists()


def test_a_copy_restored_to_a_point_in_time_is_checked_only_against_the_anchors_before_it(
    anchor_file: Path, append: Callable[[], ConsentEvent], checkpoint: Callable[[], LedgerCheckpoint]
) -> None:
    append()
    restored_to = checkpoint().created_at
    append()
    later = checkpoint()
    # The restored copy never saw the later events and checkpoint.
    _cut_tail(keep=1, checkpoints=[later])
    assert f"checkpoint {later.pk}" in _verify_against_fails(anchor_file)
    out = StringIO()
    call_command(
        "verify_ledger", "--against", str(anchor_file), "--until", restored_to.isoformat(), stdout=out
    )
    assert "anchors checked: 1" in out.getvalue()
    assert "ledger OK" in out.getvalue()
