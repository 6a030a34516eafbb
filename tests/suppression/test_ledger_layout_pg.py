"""The ledger's own count of chains (``LedgerLayout``, migration 0023): every append follows it,
whatever its process's ``COMMS_LEDGER_CHAINS``; the first append on a database records it; a
change waits for the appends in flight, and an append that waited for a change uses the new
count; the service role can neither change nor delete it; ``manage.py ledger_chains`` shows and
sets it and the release step sets it from the settings."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from io import StringIO
from typing import Any

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone

from comms.contacts.models import Contact
from comms.suppression import appending, selectors, services
from comms.suppression.models import ChainHead, ConsentEvent, LedgerLayout, Purpose
from comms.suppression.state import state_verify
from tests.db_owner import OWNER_ALIAS, as_owner, owner_connection
from tests.suppression.ledger_helpers import as_service, grant, wait_for_a_lock_waiter, withdraw

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="the layout's lock and privileges need PostgreSQL",
    ),
]


def _contact_off_chain_zero(make_contact: Callable[..., Contact], chains: int) -> Contact:
    """A contact whose chain on ``chains`` chains is not 0 (so it differs from one chain's)."""
    while True:
        contact = make_contact()
        if contact.pk % chains:
            return contact


def _wait_for_a_blocked_lock() -> bool:
    """Poll (bounded) until some session waits for a lock. ``pg_locks``, not ``pg_stat_activity``:
    the service role does not see another role's wait events."""
    for _ in range(300):
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            (waiting,) = cursor.fetchone()
        if waiting:
            return True
        time.sleep(0.05)
    return False


def _record(chains: int) -> None:
    as_owner(
        "INSERT INTO suppression_ledgerlayout (id, chains, set_at, set_by) VALUES (1, %s, now(), 'test')",
        [chains],
    )


def test_the_first_append_records_its_process_count(
    settings: Any, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    settings.LEDGER_CHAINS = 4
    assert not LedgerLayout.objects.exists()
    contact = _contact_off_chain_zero(make_contact, 4)
    event = grant(contact, purpose)
    layout = LedgerLayout.objects.get()
    assert (layout.chains, layout.set_by) == (4, "the first append")
    assert event.chain == contact.pk % 4
    settings.LEDGER_CHAINS = 1  # a later process with another value follows the record
    assert withdraw(contact, purpose).chain == contact.pk % 4


def test_an_append_follows_the_recorded_count_not_its_settings_and_warns_once(
    settings: Any, make_contact: Callable[..., Contact], purpose: Purpose, caplog: pytest.LogCaptureFixture
) -> None:
    _record(4)
    settings.LEDGER_CHAINS = 1
    appending._warned_chains.clear()
    contact = _contact_off_chain_zero(make_contact, 4)
    with caplog.at_level(logging.WARNING, logger="comms.suppression.appending"):
        first = grant(contact, purpose)
        second = withdraw(contact, purpose)
    assert first.chain == second.chain == contact.pk % 4 != 0
    warnings = [r.getMessage() for r in caplog.records if "COMMS_LEDGER_CHAINS" in r.getMessage()]
    assert warnings == [
        "COMMS_LEDGER_CHAINS is 1 here but the ledger runs on 4 chain(s): appending as the ledger says; "
        "`manage.py release` (or `manage.py ledger_chains --set N`) changes the count"
    ]
    assert selectors.ledger_verify().ok


def test_a_bulk_import_follows_the_recorded_count(
    settings: Any, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    _record(3)
    settings.LEDGER_CHAINS = 8
    contacts = [make_contact() for _ in range(6)]
    rows = [
        services.ConsentImportRow(
            external_key=f"k{n}",
            channel="email",
            purpose=purpose.key,
            occurred_at=timezone.now(),
            contact_id=contact.pk,
        )
        for n, contact in enumerate(contacts)
    ]
    result = services.consents_import(rows=rows, principal=services.Principal(actor="system", recorded_by="t"))
    assert result.errors == [] and result.created == 6
    chains = dict(ConsentEvent.objects.filter(pk__in=result.event_ids).values_list("contact_id", "chain"))
    assert chains == {contact.pk: contact.pk % 3 for contact in contacts}
    assert selectors.ledger_verify().ok
    assert state_verify()[1] == []


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE suppression_ledgerlayout SET chains = 2",
        "DELETE FROM suppression_ledgerlayout",
        "TRUNCATE suppression_ledgerlayout",
    ],
    ids=["update", "delete", "truncate"],
)
def test_the_service_role_cannot_change_or_remove_the_count(
    sql: str, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    grant(make_contact(), purpose)  # records the count
    with pytest.raises(ProgrammingError) as refused:
        as_service(sql)
    assert isinstance(refused.value.__cause__, psycopg.errors.InsufficientPrivilege)
    assert LedgerLayout.objects.get().chains == django_settings.LEDGER_CHAINS


def test_the_service_role_cannot_set_the_count_through_the_service(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    grant(make_contact(), purpose)
    with pytest.raises(ProgrammingError) as refused, transaction.atomic():
        services.ledger_chains_set(chains=4, set_by="attacker")
    assert isinstance(refused.value.__cause__, psycopg.errors.InsufficientPrivilege)
    assert LedgerLayout.objects.get().chains == django_settings.LEDGER_CHAINS


def _append_in_thread(contact: Contact, purpose: Purpose, out: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        try:
            out["event"] = grant(contact, purpose)
        except BaseException as exc:  # reported to the test, never lost
            out["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_an_append_waiting_for_a_change_of_the_count_uses_the_new_count(
    settings: Any, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    settings.LEDGER_CHAINS = 1
    grant(make_contact(), purpose)  # records one chain
    contact = _contact_off_chain_zero(make_contact, 4)
    out: dict[str, Any] = {}
    with owner_connection(), transaction.atomic(using=OWNER_ALIAS):
        assert services.ledger_chains_set(chains=4, set_by="test", using=OWNER_ALIAS) == 1
        thread = _append_in_thread(contact, purpose, out)  # waits for the change's lock
        assert wait_for_a_lock_waiter()
        assert "event" not in out
    thread.join(timeout=30)
    assert "error" not in out, out.get("error")
    assert out["event"].chain == contact.pk % 4
    assert LedgerLayout.objects.get().set_by == "test"
    assert selectors.ledger_verify().ok
    assert state_verify()[1] == []


@pytest.mark.django_db(transaction=True)
def test_a_change_of_the_count_waits_for_an_append_in_flight(
    settings: Any, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    settings.LEDGER_CHAINS = 1
    contact = _contact_off_chain_zero(make_contact, 4)
    grant(make_contact(), purpose)
    done: dict[str, Any] = {}

    def change() -> None:
        try:
            with owner_connection():
                done["before"] = services.ledger_chains_set(chains=4, set_by="test", using=OWNER_ALIAS)
        except BaseException as exc:
            done["error"] = exc

    with transaction.atomic():
        # An append in flight: its prelude ran (chain 0 by one chain), it has not committed.
        locked = appending.lock_for_append([contact], events=1)
        assert locked.chains == 1
        changer = threading.Thread(target=change)
        changer.start()
        assert _wait_for_a_blocked_lock()
        assert "before" not in done
        event = appending.append_one(
            locked=locked,
            action="withdraw",
            source="api",
            principal=services.Principal(actor="self"),
            contact=contact,
            channel="email",
            purpose=purpose,
        )
        assert event.chain == 0
    changer.join(timeout=30)
    assert "error" not in done, done.get("error")
    assert done["before"] == 1
    assert grant(contact, purpose).chain == contact.pk % 4  # after the change: the new count
    assert selectors.ledger_verify().ok
    assert state_verify()[1] == []


@pytest.mark.django_db(transaction=True)
def test_the_ledger_chains_command_shows_and_sets_the_count(
    settings: Any, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    settings.LEDGER_CHAINS = 2
    out = StringIO()
    call_command("ledger_chains", stdout=out)
    assert "not recorded yet; the first append records COMMS_LEDGER_CHAINS (2)" in out.getvalue()
    grant(make_contact(), purpose)
    with owner_connection():
        out = StringIO()
        call_command("ledger_chains", set=4, database=OWNER_ALIAS, stdout=out)
        assert out.getvalue() == "ledger chains: 4 from now on (was 2)\n"
        out = StringIO()
        call_command("ledger_chains", from_settings=True, database=OWNER_ALIAS, stdout=out)
        assert out.getvalue() == "ledger chains: 2 from now on (was 4)\n"
        out = StringIO()
        call_command("ledger_chains", from_settings=True, database=OWNER_ALIAS, stdout=out)
        assert out.getvalue() == "ledger chains: 2 (unchanged)\n"
        with pytest.raises(CommandError, match="--set: must be between 1 and 1024"):
            call_command("ledger_chains", set=0, database=OWNER_ALIAS)
    layout = LedgerLayout.objects.get()
    assert (layout.chains, layout.set_by) == (2, "COMMS_LEDGER_CHAINS")
    settings.LEDGER_CHAINS = 3
    out = StringIO()
    call_command("ledger_chains", stdout=out)
    shown = out.getvalue().splitlines()
    assert shown[0].startswith("ledger chains: 2 (set ") and shown[0].endswith(" by COMMS_LEDGER_CHAINS)")
    assert shown[1] == "COMMS_LEDGER_CHAINS here is 3: appends follow the ledger's count"
    heads = ChainHead.objects.order_by("chain").values_list("chain", "seq")
    assert shown[2:] == [f"  chain {chain}: {seq} events" for chain, seq in heads]


@pytest.mark.django_db(transaction=True)
def test_the_release_step_sets_the_count_from_the_settings(
    settings: Any, make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    settings.LEDGER_CHAINS = 1
    grant(make_contact(), purpose)  # one chain recorded by the first append
    settings.LEDGER_CHAINS = 3
    with owner_connection():
        settings.MIGRATE_DATABASE = OWNER_ALIAS  # as with DATABASE_MIGRATE_URL set
        out = StringIO()
        call_command("release", stdout=out, verbosity=0)
    assert "ledger chains: 3 from now on (was 1)" in out.getvalue()
    layout = LedgerLayout.objects.get()
    assert (layout.chains, layout.set_by) == (3, "COMMS_LEDGER_CHAINS")
    contact = _contact_off_chain_zero(make_contact, 3)
    assert grant(contact, purpose).chain == contact.pk % 3
