"""What every append must meet, and the small reads and writes the ledger's services share:
the principal, source and channel checks, a grant's validation (``grant_validate``), the
person-caused suppressions that make a new grant wait for double opt-in, and adding a
suppression. Used by ``services`` (one fact at a time) and ``imports`` (many).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from comms.contacts.models import Brand, Contact
from comms.errors import Conflict, InvalidInput
from comms.suppression import append, bulk
from comms.suppression.appending import (
    Principal,
)
from comms.suppression.keys import address_key
from comms.suppression.models import (
    PERSON_CAUSED_REASONS,
    Actor,
    Basis,
    Channel,
    ConsentEvent,
    Purpose,
    PurposeNotice,
    Source,
    Suppression,
    SuppressionChannel,
)
from comms.suppression.state import (
    scope_blocked,
    state_levels,
)

# Grants from these sources always wait for double opt-in (the address is not yet proven).
DOUBLE_OPT_IN_SOURCES = frozenset({Source.WEB_FORM, Source.PREFERENCE_CENTRE, Source.SMS_KEYWORD})
# The choices' values, once (``TextChoices.values`` builds a new list on every access, and every
# row of an import is checked against four of them).
ACTORS = frozenset(Actor.values)
SOURCES = frozenset(Source.values)
CHANNELS = frozenset(Channel.values)
BASES = frozenset(Basis.values)


# --- helpers --------------------------------------------------------------------------------


def contact_keys(contact: Contact, channels: Iterable[str]) -> dict[str, str]:
    """address key per channel for the contact's current addresses."""
    keys: dict[str, str] = {}
    for channel in channels:
        address = contact.address_for(channel)
        if address:
            keys[channel] = address_key(channel, address)
    return keys


def check_principal(contact: Contact, principal: Principal) -> None:
    if principal.actor not in ACTORS:
        raise InvalidInput("actor", f"must be one of {', '.join(Actor.values)}")
    if principal.actor == Actor.GUARDIAN:
        if principal.guardian is None:
            raise InvalidInput("actor_contact_id", "a guardian's action must name the guardian contact")
        if contact.guardian_id is None or principal.guardian.pk != contact.guardian_id:
            raise InvalidInput("actor_contact_id", "is not this contact's linked guardian")
    elif principal.guardian is not None:
        raise InvalidInput("actor_contact_id", "only a guardian's action names an actor contact")


def check_source(source: str) -> None:
    if source not in SOURCES:
        raise InvalidInput("source", f"must be one of {', '.join(Source.values)}")


def check_live(contact: Contact) -> None:
    if contact.erased_at is not None:
        raise Conflict(f"contact {contact.pk} is erased")


def is_minor(contact: Contact, at: datetime) -> bool:
    if contact.birth_date is None:  # most contacts: no time-zone conversion per grant
        return False
    age = contact.age_on(timezone.localdate(at))
    return age is not None and age < settings.DIGITAL_CONSENT_AGE


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def person_blocked(
    contact: Contact, channel: str, purpose: Purpose, key: str, *, locked: append.Locked | None = None
) -> bool:
    """Did the person withdraw or object in this scope (or suppress the address) without a
    grant made effective since, in the fold's order? Then a new grant must wait for their
    double opt-in. ``locked``: what the append's lock read (PostgreSQL), else read here."""
    if locked is not None:
        return locked.person_suppressed(key=key, channel=channel, brand_id=contact.brand_id) or scope_blocked(
            locked.levels, contact.pk, channel, purpose.pk
        )
    if person_suppressed(brand_id=contact.brand_id, channel=channel, keys=[key]):
        return True
    return scope_blocked(state_levels([contact.pk]), contact.pk, channel, purpose.pk)


def person_suppressed(*, brand_id: int, channel: str, keys: Iterable[str]) -> set[str]:
    """The keys among ``keys`` with an active suppression the person caused in this scope
    (SQLite; on PostgreSQL ``lock_for_append`` reads them under the chain locks)."""
    wanted = sorted(set(keys))
    return set(
        Suppression.objects.filter(
            Q(brand__isnull=True) | Q(brand=brand_id),
            address_key__in=wanted,
            channel__in=[channel, SuppressionChannel.ALL],
            reason__in=PERSON_CAUSED_REASONS,
            lifted_at__isnull=True,
        ).values_list("address_key", flat=True)
    )


def suppress(
    *, key: str, channel: str, brand: Brand | None, reason: str, event: ConsentEvent
) -> Suppression | None:
    """Add a suppression unless an identical active one exists (repeat events are harmless)."""
    existing = Suppression.objects.filter(
        address_key=key, channel=channel, brand=brand, reason=reason, lifted_at__isnull=True
    ).first()
    if existing:
        return None
    return Suppression.objects.create(
        address_key=key,
        channel=channel,
        brand=brand,
        reason=reason,
        source_event=event,
        created_at=event.recorded_at,
    )


# --- consent --------------------------------------------------------------------------------


def grant_validate(
    *,
    contact: Contact,
    channel: str,
    purpose: Purpose,
    basis: str,
    source: str,
    principal: Principal,
    notice_version: int | None,
    occurred_at: datetime | None,
    notices: dict[tuple[int, int | None], PurposeNotice | None] | None = None,
) -> tuple[PurposeNotice, str]:
    """Every rule a grant must meet before it is appended (one grant or an import row); returns
    the notice it points at and the address key. ``notices`` caches notice look-ups."""
    key = grant_checks(
        contact=contact,
        channel=channel,
        purpose=purpose,
        basis=basis,
        source=source,
        principal=principal,
        occurred_at=occurred_at,
    )
    return grant_notice(purpose, notice_version, notices), key


def grant_notice(
    purpose: Purpose,
    version: int | None,
    notices: dict[tuple[int, int | None], PurposeNotice | None] | None = None,
) -> PurposeNotice:
    """The notice version a grant points at (the latest when ``version`` is None), or the
    ``notice_version`` error. ``notices`` caches look-ups (an import's chunk)."""
    cache = notices if notices is not None else {}
    if (purpose.pk, version) not in cache:
        cache[(purpose.pk, version)] = notice_for(purpose, version)
    notice = cache[(purpose.pk, version)]
    if notice is None:
        raise _no_notice(purpose, version)
    return notice


def _no_notice(purpose: Purpose, version: int | None) -> InvalidInput:
    return InvalidInput("notice_version", f"purpose {purpose.key!r} has no notice version {version}")


def grant_checks(
    *,
    contact: Contact,
    channel: str,
    purpose: Purpose,
    basis: str,
    source: str,
    principal: Principal,
    occurred_at: datetime | None,
) -> str:
    """``grant_validate`` without the notice (which a grant to the latest notice takes from
    ``append.Locked.notices`` on PostgreSQL); returns the address key."""
    check_live(contact)
    check_source(source)
    if channel not in CHANNELS:
        raise InvalidInput("channel", f"must be one of {', '.join(Channel.values)}")
    if purpose.brand_id != contact.brand_id:
        raise InvalidInput("purpose", "belongs to another brand than the contact")
    if not purpose.allows_channel(channel):
        raise InvalidInput("channel", f"purpose {purpose.key!r} does not allow {channel}")
    if basis not in BASES:
        raise InvalidInput("basis", f"must be one of {', '.join(Basis.values)}")
    if basis == Basis.SOFT_OPT_IN:
        if not purpose.allows_soft_opt_in:
            raise InvalidInput("basis", f"purpose {purpose.key!r} does not permit the soft opt-in")
        if contact.kind == "guest":
            raise InvalidInput("basis", "a trial guest has no purchase, so the soft opt-in cannot apply")
    if basis == Basis.CONTRACT and purpose.marketing:
        raise InvalidInput("basis", "marketing cannot rest on contract: use consent or the soft opt-in")
    check_principal(contact, principal)
    if principal.actor not in (Actor.GUARDIAN,) and is_minor(contact, occurred_at or timezone.now()):
        raise InvalidInput("actor", "the contact is a minor: consent must be given by their linked guardian")
    address = contact.address_for(channel)
    if not address:
        raise InvalidInput(
            "channel", f"the contact has no {'email address' if channel == 'email' else 'mobile'}"
        )
    return address_key(channel, address)


# Notice versions loaded by ``latest_notice``, by id. A notice row never changes (0002: notice
# versions are append-only), so an instance stays true; it is still checked against the
# purpose and version the prelude read, so a reused id (a test database reset) loads afresh.
_loaded_notices: dict[int, PurposeNotice] = {}
_LOADED_NOTICES_MAX = 1024


def latest_notice(purpose: Purpose, locked: append.Locked) -> PurposeNotice:
    """The purpose's latest notice version as the append's prelude read it (PostgreSQL; ask
    ``lock_for_append`` with ``notice_purposes``): no round trip of its own, but the first time
    a notice version is seen by this process."""
    found = locked.notices.get(purpose.pk)
    if found is None:
        raise _no_notice(purpose, None)
    notice_id, version = found
    notice = _loaded_notices.get(notice_id)
    if notice is None or notice.purpose_id != purpose.pk or notice.version != version:
        rows = bulk.select_rows(PurposeNotice, "id = %s::bigint", [notice_id])
        if not rows:
            raise RuntimeError(f"notice {notice_id} vanished within the append's transaction")
        notice = rows[0]
        if len(_loaded_notices) >= _LOADED_NOTICES_MAX:
            _loaded_notices.clear()
        _loaded_notices[notice_id] = notice
    return notice


def notice_for(purpose: Purpose, version: int | None) -> PurposeNotice | None:
    """The notice version a grant points at (the latest when ``version`` is None)."""
    if connection.vendor == "postgresql":  # asked before every grant: no ORM compilation
        where = "purpose_id = %s::bigint" + (" AND version = %s::int" if version is not None else "")
        params = [purpose.pk] if version is None else [purpose.pk, version]
        found = bulk.select_rows(PurposeNotice, f"{where} ORDER BY version DESC LIMIT 1", params)
        return found[0] if found else None
    notices = purpose.notices.all()
    if version is not None:
        return notices.filter(version=version).first()
    return notices.order_by("-version").first()
