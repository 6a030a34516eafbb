"""The ledger on several chains (``LEDGER_CHAINS`` = 4, each a shard of the contacts): appends
spread over the chains, a checkpoint seals every head, verification names a tampered event with
its chain and a chain whose head row is gone, and concurrent single appends keep every chain
whole."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from comms.contacts.models import Contact
from comms.suppression import imports, selectors, services
from comms.suppression.gate import check
from comms.suppression.models import GENESIS_HASH, ChainHead, ConsentEvent, Purpose
from comms.suppression.services import Principal
from comms.suppression.state import state_verify
from tests.db_owner import as_owner, triggers_disabled
from tests.suppression.ledger_helpers import STAFF, grant, withdraw

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="triggers and real concurrency need PostgreSQL",
    ),
]

CHAINS = 4


@pytest.fixture
def four_chains(settings: Any) -> int:
    settings.LEDGER_CHAINS = CHAINS
    return CHAINS


def _spread(make_contact: Callable[..., Contact], purpose: Purpose, per_chain: int = 3) -> list[ConsentEvent]:
    """Grants for new contacts, ``per_chain`` more on every chain."""
    events: list[ConsentEvent] = []
    counts = dict.fromkeys(range(CHAINS), 0)
    while min(counts.values()) < per_chain:
        contact = make_contact()
        if counts[contact.pk % CHAINS] >= per_chain:
            continue
        event = grant(contact, purpose)
        counts[event.chain] += 1
        events.append(event)
    return events


def _assert_every_chain_unbroken(chains: int) -> None:
    for number in range(chains):
        rows = list(
            ConsentEvent.objects.filter(chain=number).order_by("seq").values_list("seq", "prev_hash", "hash")
        )
        assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1)), f"chain {number} has gaps"
        expected = GENESIS_HASH
        for seq, prev_hash, digest in rows:
            assert prev_hash == expected, f"chain {number} breaks at seq {seq}"
            expected = digest
        head = ChainHead.objects.get(chain=number)
        assert (head.seq, head.hash) == (len(rows), expected), f"chain {number}'s head is off"


def test_appends_land_on_every_chain_and_each_verifies(
    four_chains: int, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    events = _spread(make_contact, purpose)
    for event in events:
        assert event.chain == event.contact_id % CHAINS  # type: ignore[operator]
    assert set(ConsentEvent.objects.values_list("chain", flat=True)) == set(range(CHAINS))
    _assert_every_chain_unbroken(CHAINS)
    result = selectors.ledger_verify()
    assert result.ok, result
    assert (result.chains, result.events_checked) == (CHAINS, len(events))


def test_a_checkpoint_seals_every_chain_head(
    four_chains: int, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    _spread(make_contact, purpose)
    checkpoint = services.ledger_checkpoint()
    heads = {head.chain: [head.seq, head.hash] for head in ChainHead.objects.all()}
    assert checkpoint.heads == {str(number): heads[number] for number in range(CHAINS)}
    _spread(make_contact, purpose, per_chain=1)  # one more event per chain after the checkpoint
    second = services.ledger_checkpoint()
    assert second.prev_hash == checkpoint.hash
    assert all(second.heads[str(n)][0] == checkpoint.heads[str(n)][0] + 1 for n in range(CHAINS))
    result = selectors.ledger_verify()
    assert result.ok, result
    assert result.checkpoint_problem is None


def test_verify_names_a_tampered_event_on_the_second_chain_with_that_chain(
    four_chains: int, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    events = _spread(make_contact, purpose)
    services.ledger_checkpoint()
    victim = next(event for event in events if event.chain == 1 and event.seq == 2)
    with triggers_disabled("suppression_consentevent", "consentevent_append_only"):
        as_owner("UPDATE suppression_consentevent SET basis = 'soft_opt_in' WHERE id = %s", [victim.pk])
    result = selectors.ledger_verify()
    assert result.ok is False
    assert result.first_broken is not None
    assert (result.first_broken.event_id, result.first_broken.chain, result.first_broken.seq) == (
        victim.pk,
        1,
        2,
    )
    assert "hash does not match" in result.first_broken.problem
    assert result.events_checked == len(events)  # every chain was still read


def test_verify_reports_a_chain_whose_head_row_was_deleted(
    four_chains: int, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    events = _spread(make_contact, purpose)
    assert selectors.ledger_verify().ok
    tail = max((event for event in events if event.chain == 2), key=lambda event: event.seq)
    with triggers_disabled("suppression_chainhead", "suppression_chainhead_no_delete"):
        as_owner("DELETE FROM suppression_chainhead WHERE chain = 2")
    assert not ChainHead.objects.filter(chain=2).exists()
    result = selectors.ledger_verify()
    assert result.ok is False
    assert result.first_broken is not None
    assert (result.first_broken.chain, result.first_broken.event_id, result.first_broken.seq) == (
        2,
        tail.pk,
        tail.seq,
    )
    assert result.first_broken.problem == "chain head missing"


WORKERS = 16
APPENDS = 64


@pytest.mark.django_db(transaction=True)
def test_concurrent_single_appends_across_four_chains_keep_every_chain_whole(
    four_chains: int, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    for _ in range(CHAINS):  # some history on the chains first
        grant(make_contact(), purpose)
    contacts = [make_contact() for _ in range(APPENDS // 2)]
    before = ConsentEvent.objects.count()
    barrier = threading.Barrier(WORKERS)

    def append(index: int) -> int:
        try:
            if index < WORKERS:
                barrier.wait(timeout=30)
            # Two appends per contact: a grant then (for odd tasks) a withdrawal of another
            # contact, so one chain sees several writers at once.
            contact = contacts[index // 2]
            principal = Principal(actor="self", recorded_by=f"thread-{index}")
            if index % 2:
                event = withdraw(contact, purpose, principal=principal)
            else:
                event = grant(contact, purpose, principal=STAFF)
            return event.pk
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        ids = [future.result(timeout=120) for future in [pool.submit(append, i) for i in range(APPENDS)]]

    assert len(set(ids)) == APPENDS
    assert ConsentEvent.objects.count() == before + APPENDS
    assert len(set(ConsentEvent.objects.filter(pk__in=ids).values_list("chain", flat=True))) == CHAINS
    _assert_every_chain_unbroken(CHAINS)
    result = selectors.ledger_verify()
    assert result.ok, result
    assert result.events_checked == before + APPENDS
    assert state_verify()[1] == []


@pytest.mark.django_db(transaction=True)
def test_a_large_import_over_four_chains_runs_in_parallel_workers_and_keeps_every_rule(
    four_chains: int, monkeypatch: pytest.MonkeyPatch, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    """Outside a transaction, with several chains, ``consents_import`` splits the rows by chain
    over threads: each contact's rows keep their file order (a withdrawal after a grant wins; a
    grant after a withdrawal waits for double opt-in), bad rows and a key given twice are
    reported by their index, ids come back in row order, and every chain and the state verify."""
    monkeypatch.setattr(imports, "IMPORT_CHUNK", 5)  # many chunks per worker
    used: set[str] = set()
    real = imports._import_rows_thread

    def spy(*args: Any, **kwargs: Any) -> Any:
        used.add(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(imports, "_import_rows_thread", spy)
    contacts = [make_contact(external_id=f"x{n}") for n in range(16)]
    grant(make_contact(), purpose)  # a single append before the import
    base = timezone.now() - dt.timedelta(days=40)
    rows: list[services.ConsentImportRow] = []
    for n, contact in enumerate(contacts):
        by_external = n % 4 == 0
        steps = ["grant", "withdraw"] if n % 2 else ["withdraw", "grant"]
        for k, action in enumerate(steps):
            rows.append(
                services.ConsentImportRow(
                    external_key=f"p{n}-{k}",
                    channel="email",
                    purpose=purpose.key,
                    occurred_at=base + dt.timedelta(days=k),
                    contact_id=None if by_external else contact.pk,
                    brand="fit24" if by_external else "",
                    contact_external_id=f"x{n}" if by_external else "",
                    action=action,
                )
            )
    rows.insert(
        7,
        services.ConsentImportRow(
            external_key="p1-0",
            channel="email",
            purpose=purpose.key,
            occurred_at=base,
            contact_id=contacts[3].pk,
        ),
    )
    rows.insert(
        20,
        services.ConsentImportRow(
            external_key="bad",
            channel="fax",
            purpose=purpose.key,
            occurred_at=base,
            contact_id=contacts[5].pk,
        ),
    )
    before = ConsentEvent.objects.count()

    result = services.consents_import(rows=rows, principal=STAFF, workers=2)

    assert len(used) == 2  # two worker threads ran
    assert [(e.index, e.external_key, e.field) for e in result.errors] == [
        (7, "p1-0", "external_key"),
        (20, "bad", "channel"),
    ]
    assert result.created == 32 and ConsentEvent.objects.count() == before + 32
    assert result.event_indexes == sorted(result.event_indexes)
    events = {event.pk: event for event in ConsentEvent.objects.filter(pk__in=result.event_ids)}
    assert [events[pk].action for pk in result.event_ids] == [
        r.action for i, r in enumerate(rows) if i not in (7, 20)
    ]
    for n, contact in enumerate(contacts):
        decision = check(contact=contact, channel="email", purpose=purpose)
        if n % 2:  # grant, then withdrawal: withdrawn
            assert decision.reason == "withdrawn", (n, decision)
        else:  # withdrawal, then a grant that waits for the person's confirmation
            assert not decision.allowed, (n, decision)
            last = events[[pk for pk in result.event_ids if events[pk].contact_id == contact.pk][-1]]
            assert last.action == "grant" and last.pending_confirmation
    _assert_every_chain_unbroken(CHAINS)
    verified = selectors.ledger_verify()
    assert verified.ok, verified
    assert state_verify()[1] == []
    again = services.consents_import(rows=rows, principal=STAFF, workers=2)
    assert (again.created, again.unchanged) == (0, 32)
