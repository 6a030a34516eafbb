"""The address lock that orders withdrawals against senders (DESIGN §3 "Immediately"), on real
PostgreSQL advisory locks with real concurrent transactions.

Waiting is observed, never timed: a thread is "waiting" when pg_locks shows its backend's
advisory lock request not granted. Every poll is bounded and fails loudly when the bound is hit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from comms.contacts.models import Contact
from comms.suppression import gate, locks, services
from comms.suppression.gate import Decision
from comms.suppression.keys import address_key
from comms.suppression.models import ConsentEvent, Purpose
from comms.suppression.services import Principal

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="advisory locks and real concurrency need PostgreSQL",
    ),
]

BOUND = 10.0  # seconds: the most any "is it waiting yet?" poll may take before the test fails
JOIN = 30.0  # seconds: the most a thread may take to finish once released


# --- helpers ----------------------------------------------------------------------------------


def _scalar(sql: str, params: list[Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    return row[0]


def _backend_pid() -> int:
    return int(_scalar("SELECT pg_backend_pid()"))


def _advisory_locks(pid: int, *, granted: bool) -> int:
    return int(
        _scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted = %s AND pid = %s",
            [granted, pid],
        )
    )


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if it has not within BOUND."""
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {BOUND:.0f} s waiting for {what}")
        time.sleep(0.01)


def _wait_for(flag: threading.Event, what: str, future: Future[Any] | None = None) -> None:
    """Wait for a thread's signal; surface the thread's own error if it died instead."""
    if not flag.wait(timeout=BOUND):
        if future is not None and future.done():
            future.result()  # raises the thread's exception
        pytest.fail(f"gave up after {BOUND:.0f} s waiting for {what}")


def _waiting_on_advisory_lock(pid: int) -> bool:
    return _advisory_locks(pid, granted=False) > 0


@pytest.fixture
def granted(
    make_contact: Callable[..., Contact], purpose: Purpose, staff: Principal
) -> tuple[Contact, Purpose, str]:
    """A contact whose email consent is effective, and the email address key senders lock."""
    contact = make_contact()
    services.consent_grant(
        contact=contact,
        channel="email",
        purpose=purpose,
        basis="consent",
        source="front_desk",
        principal=staff,
    )
    assert contact.email is not None
    assert gate.check(contact=contact, channel="email", purpose=purpose).allowed
    return contact, purpose, address_key("email", contact.email)


# --- the sender's lock makes a withdrawal wait ------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("whole_channel", "denial"),
    [(True, "suppressed:withdrawn"), (False, "withdrawn")],
    ids=["every-purpose", "one-purpose"],
)
def test_a_withdrawal_waits_for_an_in_flight_send_and_every_later_check_denies(
    granted: tuple[Contact, Purpose, str], whole_channel: bool, denial: str
) -> None:
    contact, purpose, key = granted
    sender_checked, release_sender = threading.Event(), threading.Event()
    withdrawal_started, withdrawal_done = threading.Event(), threading.Event()
    sender_decision: list[Decision] = []
    withdrawer_pid: list[int] = []

    def sender() -> None:
        try:
            with transaction.atomic():
                locks.sender_lock([key])
                sender_decision.append(gate.check(contact=contact, channel="email", purpose=purpose))
                sender_checked.set()
                # ...the hand-off to the provider would happen here, still under the lock...
                if not release_sender.wait(timeout=JOIN):
                    raise AssertionError("the sender was never released")
        finally:
            connection.close()

    def withdrawer() -> None:
        try:
            withdrawer_pid.append(_backend_pid())
            withdrawal_started.set()
            services.consent_withdraw(
                contact=contact,
                channel="email",
                purpose=None if whole_channel else purpose,
                source="unsubscribe_link",
                principal=Principal(actor="self", recorded_by="test"),
            )
            withdrawal_done.set()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            sending = pool.submit(sender)
            _wait_for(sender_checked, "the sender to take its lock and check the gate", sending)
            assert sender_decision[0].allowed

            withdrawing = pool.submit(withdrawer)
            _wait_for(withdrawal_started, "the withdrawal to start", withdrawing)
            _wait_until(
                lambda: _waiting_on_advisory_lock(withdrawer_pid[0]) or withdrawing.done(),
                "the withdrawal to queue behind the sender's lock",
            )
            assert not withdrawing.done(), "the withdrawal finished while a send held the address lock"
            assert _waiting_on_advisory_lock(withdrawer_pid[0])
            assert not withdrawal_done.is_set()
            # Nothing of the withdrawal is written while it waits.
            assert not ConsentEvent.objects.filter(contact=contact, action="withdraw").exists()
        finally:
            release_sender.set()
        sending.result(timeout=JOIN)
        withdrawing.result(timeout=JOIN)

    assert withdrawal_done.is_set()
    after = gate.check(contact=contact, channel="email", purpose=purpose)
    assert (after.allowed, after.reason) == (False, denial)


# --- a withdrawal's lock makes a sender wait, and the sender then sees it ---------------------


@pytest.mark.django_db(transaction=True)
def test_a_sender_waits_for_an_uncommitted_withdrawal_and_then_its_check_denies(
    granted: tuple[Contact, Purpose, str],
) -> None:
    contact, purpose, key = granted
    withdrawal_written, release_withdrawal = threading.Event(), threading.Event()
    sender_started, sender_locked = threading.Event(), threading.Event()
    sender_decision: list[Decision] = []
    sender_pid: list[int] = []

    def withdrawer() -> None:
        try:
            with transaction.atomic():
                services.consent_withdraw(
                    contact=contact,
                    channel="email",
                    purpose=None,
                    source="one_click",
                    principal=Principal(actor="self", recorded_by="test"),
                )
                withdrawal_written.set()
                # Written, locked, not yet committed.
                if not release_withdrawal.wait(timeout=JOIN):
                    raise AssertionError("the withdrawal was never released")
        finally:
            connection.close()

    def sender() -> None:
        try:
            sender_pid.append(_backend_pid())
            sender_started.set()
            with transaction.atomic():
                locks.sender_lock([key])
                sender_locked.set()
                # The check runs after the lock is granted, so it sees the committed withdrawal.
                sender_decision.append(gate.check(contact=contact, channel="email", purpose=purpose))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            withdrawing = pool.submit(withdrawer)
            _wait_for(withdrawal_written, "the withdrawal to take its lock and write", withdrawing)
            # Uncommitted, so a check that does not wait for the lock would still say yes.
            assert gate.check(contact=contact, channel="email", purpose=purpose).allowed

            sending = pool.submit(sender)
            _wait_for(sender_started, "the sender to start", sending)
            _wait_until(
                lambda: _waiting_on_advisory_lock(sender_pid[0]) or sending.done(),
                "the sender to queue behind the withdrawal's lock",
            )
            assert not sending.done(), "the sender got the address lock while a withdrawal held it"
            assert not sender_locked.is_set()
        finally:
            release_withdrawal.set()
        withdrawing.result(timeout=JOIN)
        sending.result(timeout=JOIN)

    assert sender_locked.is_set()
    assert len(sender_decision) == 1
    assert (sender_decision[0].allowed, sender_decision[0].reason) == (False, "suppressed:withdrawn")


# --- shape of the lock ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_address_locks_refuse_to_run_outside_a_transaction() -> None:
    key = address_key("email", "someone@example.no")
    assert not connection.in_atomic_block
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        locks.sender_lock([key])
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        locks.withdrawal_lock([key])


@pytest.mark.django_db(transaction=True)
def test_two_senders_hold_the_shared_lock_on_one_address_at_once(
    granted: tuple[Contact, Purpose, str],
) -> None:
    contact, purpose, key = granted
    first_holds, release_first = threading.Event(), threading.Event()
    first_pid: list[int] = []

    def first_sender() -> None:
        try:
            with transaction.atomic():
                first_pid.append(_backend_pid())
                locks.sender_lock([key])
                first_holds.set()
                if not release_first.wait(timeout=JOIN):
                    raise AssertionError("the first sender was never released")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            holding = pool.submit(first_sender)
            _wait_for(first_holds, "the first sender to take its lock", holding)
            with transaction.atomic():
                # Were the lock exclusive this would block; the timeout turns that into an error.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '10s'")
                locks.sender_lock([key])
                assert gate.check(contact=contact, channel="email", purpose=purpose).allowed
                mine = _backend_pid()
                assert _advisory_locks(first_pid[0], granted=True) == 1
                assert _advisory_locks(mine, granted=True) == 1
                assert (
                    _scalar(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                        " AND pid = ANY(%s)",
                        [[first_pid[0], mine]],
                    )
                    == 0
                )
                modes = _scalar(
                    "SELECT array_agg(DISTINCT mode) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND pid = ANY(%s)",
                    [[first_pid[0], mine]],
                )
                assert modes == ["ShareLock"]
        finally:
            release_first.set()
        holding.result(timeout=JOIN)


@pytest.mark.django_db(transaction=True)
def test_the_address_locks_end_with_the_transaction(granted: tuple[Contact, Purpose, str]) -> None:
    _, _, key = granted
    mine = _backend_pid()
    with transaction.atomic():
        locks.withdrawal_lock([key])
        assert _advisory_locks(mine, granted=True) == 1
        assert (
            _scalar("SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND pid = %s", [mine])
            == "ExclusiveLock"
        )
    assert _advisory_locks(mine, granted=True) == 0
    with transaction.atomic():
        locks.sender_lock([key, key, ""])  # duplicates and empty keys are ignored
        assert _advisory_locks(mine, granted=True) == 1
    assert _advisory_locks(mine, granted=True) == 0
