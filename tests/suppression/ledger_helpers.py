"""Short forms of the ledger services for the gate and service tests (one place, one meaning)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from comms.contacts.models import Brand, Contact
from comms.contacts.services import ContactInput, contact_update
from comms.suppression import services
from comms.suppression.gate import check
from comms.suppression.models import ConsentEvent, Purpose, Suppression
from comms.suppression.services import Principal

STAFF = Principal(actor="staff", recorded_by="test")
SELF = Principal(actor="self", recorded_by="test")
SYSTEM = Principal(actor="system", recorded_by="test-key")


def grant(
    contact: Contact,
    purpose: Purpose,
    channel: str = "email",
    *,
    principal: Principal = STAFF,
    source: str = "front_desk",
    basis: str = "consent",
    **extra: Any,
) -> ConsentEvent:
    return services.consent_grant(
        contact=contact,
        channel=channel,
        purpose=purpose,
        basis=basis,
        source=source,
        principal=principal,
        **extra,
    )


def confirm(event: ConsentEvent, principal: Principal = SELF, **extra: Any) -> ConsentEvent:
    return services.consent_confirm(
        grant=event, source=extra.pop("source", "web_form"), principal=principal, **extra
    )


def withdraw(
    contact: Contact, purpose: Purpose | None, channel: str | None = "email", **extra: Any
) -> ConsentEvent:
    return services.consent_withdraw(
        contact=contact,
        channel=channel,
        purpose=purpose,
        source=extra.pop("source", "unsubscribe_link"),
        principal=extra.pop("principal", SELF),
        **extra,
    )


def object_to(contact: Contact, **extra: Any) -> ConsentEvent:
    return services.objection_record(contact=contact, source="rights_request", principal=SELF, **extra)


def suppress(
    address: str,
    reason: str,
    *,
    channel: str = "email",
    brand: Brand | None = None,
    principal: Principal = STAFF,
    source: str = "api",
    **extra: Any,
) -> tuple[ConsentEvent, Suppression]:
    event, suppression = services.suppression_add(
        channel=channel,
        address=address,
        reason=reason,
        source=source,
        principal=principal,
        brand=brand,
        **extra,
    )
    assert suppression is not None
    return event, suppression


def decide(
    contact: Contact, purpose: Purpose, channel: str = "email", **extra: Any
) -> tuple[bool, str, int | None]:
    decision = check(contact=contact, channel=channel, purpose=purpose, **extra)
    return (decision.allowed, decision.reason, decision.event_id)


def update(contact: Contact, **fields: Any) -> Contact:
    data = ContactInput()
    for name, value in fields.items():
        setattr(data, name, value)
    return contact_update(contact=contact, data=data)


def years_ago(years: int, *, plus_days: int = 0) -> dt.date:
    today = timezone.localdate()
    try:
        born = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        born = today.replace(year=today.year - years, day=28)
    return born + dt.timedelta(days=plus_days)


def a_minor() -> dt.date:
    return years_ago(settings.DIGITAL_CONSENT_AGE - 3)


def wait_for_a_lock_waiter() -> bool:
    """Poll (bounded: 300 × 50 ms) until another session of this database waits for a lock."""
    for _ in range(300):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            (waiting,) = cursor.fetchone()
        if waiting:
            return True
        time.sleep(0.05)
    return False


def as_service(sql: str, params: list[Any] | None = None) -> int:
    """One statement as the service role (the suite's own connection), in a savepoint; the
    number of rows it touched."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return int(cursor.rowcount)
