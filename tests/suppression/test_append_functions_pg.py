"""The append's two database functions (migration ``suppression/0015``): their column lists are
the state model's, the state guard still refuses a wrong row written through them, and a grant
decides on the state read under the chain head's lock, so a withdrawal committed while the grant
waited for that lock makes it wait for double opt-in."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import DatabaseError, connection, transaction

from comms.contacts.models import Contact
from comms.suppression.models import ConsentState, Purpose
from tests.suppression.ledger_helpers import STAFF, grant, wait_for_a_lock_waiter, withdraw

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="database functions need PostgreSQL",
    ),
]


def _definition(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef(%s::regproc)", [name])
        (text,) = cursor.fetchone()
    return str(text)


@pytest.mark.django_db
def test_the_write_function_names_every_state_column_of_the_model() -> None:
    body = _definition("comms_ledger_write")
    columns = [f.column for f in ConsentState._meta.concrete_fields if f.column != "id"]
    update = re.search(r"UPDATE suppression_consentstate AS t SET \(([^)]*)\)", body)
    insert = re.search(r"INSERT INTO suppression_consentstate \(([^)]*)\)", body)
    assert update is not None and insert is not None, body
    level = {"contact_id", "channel", "purpose_id"}
    assert {c.strip() for c in update.group(1).split(",")} == set(columns) - level
    assert {c.strip() for c in insert.group(1).split(",")} == set(columns)


@pytest.mark.django_db
def test_a_state_row_that_names_no_event_of_its_scope_is_refused_through_the_function(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    contact, other = make_contact(), make_contact()
    event = grant(other, purpose)  # an event of another contact
    forged = {
        "contact_id": contact.pk,
        "channel": "email",
        "purpose_id": purpose.pk,
        "positive_event_id": event.pk,
        "positive_order": "9" * 44,
        "grant_event_id": event.pk,
        "grant_basis": "consent",
        "grant_actor": "staff",
        "grant_actor_contact_id": None,
        "grant_opt_out_offered": False,
        "grant_notice_version": 1,
        "grant_occurred_at": event.occurred_at.isoformat(),
        "pending_event_id": None,
        "pending_order": "",
        "withdrawal_event_id": None,
        "withdrawal_order": "",
        "objection_event_id": None,
        "objection_order": "",
        "restriction_event_id": None,
        "restriction_order": "",
        "restricted": False,
        "updated_at": event.recorded_at.isoformat(),
    }
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT comms_ledger_write('[]'::jsonb, '[]'::jsonb, '[]'::jsonb, %s::jsonb, '[]'::jsonb)",
            [json.dumps([forged])],
        )
    assert not ConsentState.objects.filter(contact=contact).exists()


@pytest.mark.django_db(transaction=True)
def test_a_grant_waiting_for_the_chain_lock_sees_the_withdrawal_committed_before_it(
    make_contact: Callable[..., Contact], purpose: Purpose
) -> None:
    contact = make_contact()
    grant(contact, purpose)
    appended = threading.Event()
    release = threading.Event()
    outcome: dict[str, Any] = {}

    def withdrawer() -> None:
        try:
            with transaction.atomic():
                withdraw(contact, purpose)
                appended.set()  # holds the chain head's lock until commit
                release.wait(timeout=30)
        finally:
            connection.close()

    def granter() -> None:
        try:
            outcome["grant"] = grant(contact, purpose, principal=STAFF)
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc
        finally:
            connection.close()

    first = threading.Thread(target=withdrawer)
    first.start()
    assert appended.wait(timeout=30)
    second = threading.Thread(target=granter)
    second.start()
    # Wait until the grant is blocked on the head's row lock, then let the withdrawal commit.
    assert wait_for_a_lock_waiter(), "the grant never waited for the chain head's lock"
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert "error" not in outcome, outcome
    # Decided on the state as of after the withdrawal: it must wait for the person's own opt-in.
    assert outcome["grant"].pending_confirmation is True


@pytest.mark.django_db
def test_select_rows_loads_the_instances_the_orm_loads(make_contact: Callable[..., Contact]) -> None:
    """``bulk.select_rows`` fills the instance's ``__dict__`` instead of calling ``__init__``:
    every field, the saved state and a model method must be exactly what the ORM gives, and a
    model with an init signal listening gets the ORM's own path."""
    from django.db.models import signals

    from comms.suppression import bulk

    contact = make_contact(email="Select.Rows@example.org", first_name="Åse")
    (fast,) = bulk.select_rows(Contact, "id = %s::bigint", [contact.pk])
    orm = Contact.objects.get(pk=contact.pk)
    for field in Contact._meta.concrete_fields:
        assert getattr(fast, field.attname) == getattr(orm, field.attname), field.attname
    assert (fast._state.adding, fast._state.db) == (False, "default")
    assert fast.brand == orm.brand and fast.address_key_for("email") == orm.address_key_for("email")
    fast.first_name = "Åsa"
    fast.save(update_fields=["first_name"])
    assert Contact.objects.get(pk=contact.pk).first_name == "Åsa"

    seen: list[Any] = []

    def listener(sender: Any, instance: Any, **kwargs: Any) -> None:
        seen.append(instance)

    signals.post_init.connect(listener, sender=Contact)
    try:
        (slow,) = bulk.select_rows(Contact, "id = %s::bigint", [contact.pk])
    finally:
        signals.post_init.disconnect(listener, sender=Contact)
    assert seen == [slow]
