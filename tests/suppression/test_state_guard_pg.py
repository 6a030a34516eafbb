"""The consent state's guard (migrations 0012, 0017) refuses every write the ledger's services would not
make, column by column: here the service role itself (which may UPDATE the state) tries the
edits an attacker with its credentials would, and each is refused; and an append to a chain whose
head row is gone is refused instead of restarting the chain."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.utils import ProgrammingError

from comms.contacts.models import Contact
from comms.suppression import selectors, services
from comms.suppression.models import ChainHead, ConsentEvent, ConsentState, Purpose
from tests.db_owner import as_owner, triggers_disabled
from tests.suppression.ledger_helpers import SELF, as_service, decide, grant, withdraw

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="the state's guard trigger needs PostgreSQL",
    ),
]


@pytest.fixture(autouse=True, params=["few-rows plan", "planned per statement"])
def guard_path(request: pytest.FixtureRequest, db: None) -> Iterator[str]:
    """Every rule through both of the guard's paths (migration 0017): the static query a single
    append's statement runs, and the same text through EXECUTE that a bulk statement runs."""
    if request.param == "planned per statement":
        with connection.cursor() as cursor:
            cursor.execute("SET comms.guard_few_rows = 0")
    yield str(request.param)
    with connection.cursor() as cursor:
        cursor.execute("RESET comms.guard_few_rows")


def _row(contact: Contact, purpose: Purpose) -> ConsentState:
    return ConsentState.objects.get(contact=contact, channel="email", purpose=purpose)


def test_pointing_a_column_at_another_event_of_the_same_order_is_refused(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    contact = make_contact()
    grant(contact, purpose)
    first = withdraw(contact, purpose)
    second = withdraw(contact, purpose)
    assert _row(contact, purpose).withdrawal_event_id == second.pk
    with pytest.raises(ProgrammingError, match="may only move forward"):
        as_service(
            "UPDATE suppression_consentstate SET withdrawal_event_id = %s WHERE id = %s",
            [first.pk, _row(contact, purpose).pk],
        )
    assert _row(contact, purpose).withdrawal_event_id == second.pk


def test_the_denormalised_grant_columns_cannot_be_edited_alone(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    contact = make_contact()
    event = grant(contact, purpose)
    row = _row(contact, purpose)
    assert (row.grant_event_id, row.grant_basis) == (event.pk, "consent")
    for column, value in (
        ("grant_basis", "soft_opt_in"),
        ("grant_actor", "guardian"),
        ("grant_opt_out_offered", True),
        ("grant_notice_version", 9),
        ("grant_actor_contact_id", contact.pk),
    ):
        with pytest.raises(ProgrammingError, match="grant columns"):
            as_service(f"UPDATE suppression_consentstate SET {column} = %s WHERE id = %s", [value, row.pk])
    with pytest.raises(ProgrammingError, match="grant columns"):
        as_service("UPDATE suppression_consentstate SET grant_occurred_at = now() WHERE id = %s", [row.pk])
    assert _row(contact, purpose).grant_basis == "consent"


def test_restricted_cannot_be_switched_without_a_restriction_event(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    contact = make_contact()
    grant(contact, purpose)
    services.objection_record(contact=contact, source="rights_request", principal=SELF)
    level = ConsentState.objects.get(contact=contact, channel="", purpose=None)
    with pytest.raises(ProgrammingError, match="restricted"):
        as_service("UPDATE suppression_consentstate SET restricted = true WHERE id = %s", [level.pk])
    # A real restriction and its lift move it, through the services.
    services.restriction_set(contact=contact, source="rights_request", principal=SELF)
    assert ConsentState.objects.get(pk=level.pk).restricted is True
    services.restriction_lift(contact=contact, source="rights_request", principal=SELF)
    assert ConsentState.objects.get(pk=level.pk).restricted is False


def test_a_row_cannot_borrow_another_contacts_grant_or_be_planted_for_it(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    owner, other = make_contact(), make_contact()
    theirs = grant(owner, purpose)
    withdrawn = withdraw(other, purpose)
    row = _row(other, purpose)
    order = _row(owner, purpose).positive_order
    with pytest.raises(ProgrammingError, match="does not name an event of its scope"):
        as_service(
            "UPDATE suppression_consentstate SET positive_event_id = %s, positive_order = %s,"
            " grant_event_id = %s, grant_basis = 'consent', grant_actor = 'staff' WHERE id = %s",
            [theirs.pk, order, theirs.pk, row.pk],
        )
    newcomer = make_contact()
    with pytest.raises(ProgrammingError, match="does not name an event of its scope"):
        as_service(
            "INSERT INTO suppression_consentstate (contact_id, channel, purpose_id, positive_event_id,"
            " positive_order, grant_event_id, grant_basis, grant_actor, grant_opt_out_offered,"
            " pending_order, withdrawal_order, objection_order, restriction_order, restricted, updated_at)"
            " VALUES (%s, 'email', %s, %s, %s, %s, 'consent', 'staff', false, '', '', '', '', false, now())",
            [newcomer.pk, purpose.pk, theirs.pk, order, theirs.pk],
        )
    assert decide(other, purpose) == (False, "withdrawn", withdrawn.pk)
    assert not ConsentState.objects.filter(contact=newcomer).exists()


def test_an_append_to_a_chain_without_its_head_is_refused_and_writes_nothing(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    contact = make_contact()
    grant(contact, purpose)
    chain = contact.pk % django_settings.LEDGER_CHAINS
    with triggers_disabled("suppression_chainhead", "suppression_chainhead_no_delete"):
        as_owner("DELETE FROM suppression_chainhead WHERE chain = %s", [chain])
    before = ConsentEvent.objects.count()
    with pytest.raises(services.LedgerBroken, match=f"head of chain {chain} is missing"):
        withdraw(contact, purpose)
    assert ConsentEvent.objects.count() == before
    assert not ChainHead.objects.filter(chain=chain).exists()  # not recreated at seq 0
    result = selectors.ledger_verify()
    assert result.ok is False
    assert result.first_broken is not None and result.first_broken.problem == "chain head missing"


def test_a_new_chain_gets_its_head_on_the_first_append(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    assert not ChainHead.objects.exists()
    event = grant(make_contact(), purpose)
    head = ChainHead.objects.get(chain=event.chain)
    assert (head.seq, head.hash) == (1, event.hash)
    assert event.seq == 1
