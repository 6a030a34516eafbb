"""``state_verify`` and ``verify_ledger --state`` name a consent state row that no longer follows
from the ledger: here one changed by the table's owner with the state's guard trigger switched
off (the only way past it), forgetting a withdrawal so the live gate would let mail through."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.utils import ProgrammingError

from comms.contacts.models import Contact
from comms.suppression.models import ConsentState, Purpose
from comms.suppression.state import state_verify
from tests.db_owner import as_owner, triggers_disabled
from tests.suppression.ledger_helpers import decide, grant, withdraw

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="the state's guard trigger and the owner's bypass need PostgreSQL",
    ),
]

FORGET_WITHDRAWAL = (
    "UPDATE suppression_consentstate SET withdrawal_event_id = NULL, withdrawal_order = ''"
    " WHERE contact_id = %s AND channel = 'email' AND purpose_id = %s"
)


def _run_verify(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("verify_ledger", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_an_intact_state_verifies_and_the_command_says_so(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    contact = make_contact()
    grant(contact, purpose)
    withdraw(contact, purpose)
    assert state_verify() == (1, [])
    out, _ = _run_verify("--state")
    assert "consent state checked: 1 contact(s)" in out
    assert "ledger OK" in out


def test_a_state_row_changed_behind_the_services_back_is_named_and_fails_the_command(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    bystander = make_contact()
    grant(bystander, purpose)
    contact = make_contact()
    grant(contact, purpose)
    withdrawal = withdraw(contact, purpose)
    assert decide(contact, purpose) == (False, "withdrawn", withdrawal.pk)

    # With its guard on, the owner cannot move the state backwards either (for the message it
    # refuses with, see the test below).
    with pytest.raises(ProgrammingError), transaction.atomic():
        as_owner(FORGET_WITHDRAWAL, [contact.pk, purpose.pk])
    with triggers_disabled("suppression_consentstate", "consentstate_guard"):
        as_owner(FORGET_WITHDRAWAL, [contact.pk, purpose.pk])
    row = ConsentState.objects.get(contact=contact, channel="email", purpose=purpose)
    assert (row.withdrawal_event_id, row.withdrawal_order) == (None, "")
    assert decide(contact, purpose)[:2] == (True, "consent")  # what the tampering buys

    checked, mismatches = state_verify()
    assert checked == 2
    assert [(m.contact_id, m.channel, m.purpose_id) for m in mismatches] == [
        (contact.pk, "email", purpose.pk)
    ]
    assert "withdrawal_event_id" in mismatches[0].problem
    assert "withdrawal_order" in mismatches[0].problem
    assert mismatches[0].describe().startswith(f"contact {contact.pk} email/{purpose.pk}: ")

    # Without --state the chain alone still verifies: the events were never touched.
    assert "ledger OK" in _run_verify()[0]
    err = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("verify_ledger", "--state", stdout=StringIO(), stderr=err)
    assert "consent state differs from the ledger in 1 row(s)" in str(failure.value)
    assert f"state: contact {contact.pk} email/{purpose.pk}: differs" in err.getvalue()
    assert f"contact {bystander.pk} " not in err.getvalue()


def test_the_state_guard_refuses_a_backward_move_with_its_own_message(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    contact = make_contact()
    grant(contact, purpose)
    withdraw(contact, purpose)
    with pytest.raises(ProgrammingError, match="may only move forward"), transaction.atomic():
        as_owner(FORGET_WITHDRAWAL, [contact.pk, purpose.pk])
