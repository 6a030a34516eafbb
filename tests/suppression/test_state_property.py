"""The consent state and the fold agree (DESIGN §3): for random sequences of ledger operations,
driven through the services, the live gate (one SQL statement over the state and the
suppressions) gives the same decision, reason and event as the reference fold over the events,
and ``state_verify`` finds nothing to report. A deterministic walk through every rule of the
precedence follows, so each rule is known to be compared at least once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from comms.contacts.models import Brand, Contact
from comms.errors import Conflict, Forbidden, InvalidInput
from comms.suppression import gate, services
from comms.suppression.gate import Decision
from comms.suppression.keys import address_key
from comms.suppression.models import (
    STAFF_LIFTABLE_REASONS,
    ConsentEvent,
    Purpose,
    Suppression,
    SuppressionReason,
)
from comms.suppression.services import Principal
from comms.suppression.state import state_verify
from tests.suppression.ledger_helpers import SELF, STAFF, a_minor, update, years_ago

MakeContact = Callable[..., Contact]
MakePurpose = Callable[..., Purpose]

CHANNELS = ("email", "sms")
WHO = ("member", "minor", "guest", "nobuy")
LIFETIME_DAYS = 180

# Every reason the services can bring about; ``basis_not_permitted`` needs a purpose that turns
# into a marketing purpose after a contract grant, which no service does (see the walk below).
REACHABLE = {
    "consent",
    "soft_opt_in",
    "contract",
    "objection",
    "restricted",
    "withdrawn",
    "minor_without_guardian",
    "soft_opt_in_not_applicable",
    "stale_notice",
    "consent_expired",
    "awaiting_confirmation",
    "no_consent",
    "suppressed",
}


def as_guardian(guardian: Contact) -> Principal:
    return Principal(actor="guardian", guardian=guardian, recorded_by="test")


# --- the world one example runs in ------------------------------------------------------------


@dataclass
class World:
    brand: Brand
    guardian: Contact
    contacts: dict[str, Contact]
    purposes: list[Purpose]  # soft opt-in; min notice + lifetime; not marketing (contract)
    base: dt.datetime
    pending: list[ConsentEvent] = field(default_factory=list)
    moves: int = 0

    def when(self, days_back: int | None) -> dt.datetime | None:
        return None if days_back is None else self.base - dt.timedelta(days=days_back)


def build_world(brand: Brand, make_contact: MakeContact, make_purpose: MakePurpose) -> World:
    guardian = make_contact()
    contacts = {
        "member": make_contact(birth_date=years_ago(30), purchase_at=timezone.now() - dt.timedelta(days=30)),
        "minor": make_contact(birth_date=a_minor(), guardian_id=guardian.pk),
        "guest": make_contact(kind="guest"),
        # A member with no purchase and, until ``reveal_minor``, no known birth date.
        "nobuy": make_contact(),
    }
    soft = make_purpose("fit24-member-dialogue", allows_soft_opt_in=True)
    fresh = make_purpose("fit24-newsletter")
    services.purpose_notice_publish(purpose=fresh, text="The newsletter notice, second edition")
    fresh = services.purpose_update(purpose=fresh, min_notice_version=2, consent_lifetime_days=LIFETIME_DAYS)
    service = make_purpose("fit24-service-messages", marketing=False)
    return World(brand, guardian, contacts, [soft, fresh, service], base=timezone.now())


# --- operations (the last two, ``reveal_minor`` and ``toggle_soft_opt_in``, end a sequence) -------------------------------------------------------------------------------

days_back = st.one_of(st.none(), st.integers(min_value=0, max_value=4 * LIFETIME_DAYS))
who = st.sampled_from(WHO)
channel = st.sampled_from(CHANNELS)
purpose_index = st.sampled_from([0, 1, 1, 2])

KINDS = (
    *["grant"] * 6,
    *["confirm"] * 3,
    *["withdraw"] * 2,
    "object",
    "restrict",
    *["lift"] * 2,
    "suppress",
    "lift_suppression",
    "reveal_minor",
    "unlink_guardian",
    "relink_guardian",
    *["new_address"] * 2,
)
# The bases worth trying per purpose (the services refuse the others, which is tested elsewhere).
BASES = (("consent", "soft_opt_in", "soft_opt_in"), ("consent",), ("consent", "contract"))
# Every operation draws every parameter; each kind reads the ones it needs.
parameters = st.fixed_dictionaries(
    {
        "who": who,
        "purpose": purpose_index,
        "channel": channel,
        "basis": st.integers(0, 5),
        "source": st.sampled_from(
            ["front_desk", "import", "api", "front_desk", "web_form", "preference_centre", "sms_keyword"]
        ),
        "actor": st.sampled_from(["staff", "self", "guardian"]),
        "notice_version": st.sampled_from([None, None, 1, 2]),
        "back": days_back,
        "opt_out": st.booleans(),
        "pick": st.integers(0, 30),
        "delay": st.one_of(st.none(), st.integers(0, 60)),
        "scope": st.sampled_from(["purpose", "channel", "all"]),
        "suppress_channel": st.sampled_from(["email", "sms", "all"]),
        "reason": st.sampled_from(SuppressionReason.values),
        "brand_wide": st.booleans(),
    }
)
operation = st.tuples(st.sampled_from(KINDS), parameters)
Op = tuple[str, dict[str, Any]]


def principal_for(world: World, name: str, kind: str) -> Principal:
    if kind == "guardian" and name == "minor":
        return as_guardian(world.guardian)
    return SELF if kind == "self" else STAFF


def apply(world: World, op: Op) -> None:
    """Run one operation through the services (refusals are part of the game: skipped)."""
    kind, p = op
    contacts = world.contacts
    name = p["who"]
    contact = contacts[name]
    occurred_at = world.when(p["back"])
    if kind == "grant":
        if name == "minor" and p["actor"] != "staff":
            principal = as_guardian(world.guardian)  # the minor's grants are mostly the guardian's
        else:
            principal = principal_for(world, name, p["actor"])
        event = services.consent_grant(
            contact=contact,
            channel=p["channel"],
            purpose=world.purposes[p["purpose"]],
            basis=BASES[p["purpose"]][p["basis"] % len(BASES[p["purpose"]])],
            source=p["source"],
            principal=principal,
            notice_version=p["notice_version"],
            opt_out_offered=p["opt_out"],
            occurred_at=occurred_at,
        )
        if event.pending_confirmation:
            world.pending.append(event)
    elif kind == "confirm":
        if not world.pending:
            return
        grant = world.pending[p["pick"] % len(world.pending)]
        confirmed_at = None
        if p["delay"] is not None:
            confirmed_at = min(grant.occurred_at + dt.timedelta(days=p["delay"]), timezone.now())
        owner = next(n for n, c in contacts.items() if c.pk == grant.contact_id)
        services.consent_confirm(
            grant=grant,
            source="web_form",
            principal=as_guardian(world.guardian) if owner == "minor" else SELF,
            occurred_at=confirmed_at,
        )
    elif kind == "withdraw":
        scope = p["scope"]
        services.consent_withdraw(
            contact=contact,
            channel=None if scope == "all" else p["channel"],
            purpose=world.purposes[p["purpose"]] if scope == "purpose" else None,
            source="unsubscribe_link",
            principal=SELF,
            occurred_at=occurred_at,
        )
    elif kind == "object":
        services.objection_record(
            contact=contact, source="rights_request", principal=SELF, occurred_at=occurred_at
        )
    elif kind == "restrict":
        services.restriction_set(
            contact=contact, source="rights_request", principal=STAFF, occurred_at=occurred_at
        )
    elif kind == "lift":
        services.restriction_lift(
            contact=contact, source="rights_request", principal=STAFF, occurred_at=occurred_at
        )
    elif kind == "suppress":
        scope = p["suppress_channel"]
        address = contact.address_for(scope if scope != "all" else p["channel"])
        assert address
        services.suppression_add(
            channel=scope,
            address=address,
            reason=p["reason"],
            source="api",
            principal=STAFF,
            brand=None if p["brand_wide"] else world.brand,
        )
    elif kind == "lift_suppression":
        liftable = list(
            Suppression.objects.filter(lifted_at__isnull=True, reason__in=STAFF_LIFTABLE_REASONS).order_by(
                "pk"
            )
        )
        if liftable:
            services.suppression_lift(
                suppression=liftable[p["pick"] % len(liftable)], source="admin", principal=STAFF
            )
    elif kind == "reveal_minor":
        contacts["nobuy"] = update(contacts["nobuy"], birth_date=a_minor())
    elif kind == "unlink_guardian":
        contacts["minor"] = update(contacts["minor"], guardian_id=None)
    elif kind == "relink_guardian":
        contacts["minor"] = update(contacts["minor"], guardian_id=world.guardian.pk)
    elif kind == "toggle_soft_opt_in":
        soft = world.purposes[0]
        world.purposes[0] = services.purpose_update(
            purpose=soft, allows_soft_opt_in=not soft.allows_soft_opt_in
        )
    elif kind == "new_address":
        world.moves += 1
        if p["channel"] == "email":
            contacts[name] = update(contact, email=f"moved{world.moves}.{contact.pk}@example.no")
        else:
            contacts[name] = update(contact, mobile=f"+47913{(contact.pk * 37 + world.moves) % 100000:05d}")
    else:  # pragma: no cover - KINDS names every kind
        raise AssertionError(kind)


# --- the comparison ---------------------------------------------------------------------------

Outcome = tuple[bool, str, int | None]


def as_tuple(decision: Decision) -> Outcome:
    return (decision.allowed, decision.reason, decision.event_id)


def compare_all(world: World) -> dict[tuple[str, str, str], Outcome]:
    """Every contact × purpose × channel: SQL over the state against the fold over the events, at
    one instant after everything was recorded. Returns the (agreed) outcomes."""
    contacts = [Contact.objects.get(pk=c.pk) for c in world.contacts.values()]
    purposes = [Purpose.objects.get(pk=p.pk) for p in world.purposes]
    at = timezone.now()
    outcomes: dict[tuple[str, str, str], Outcome] = {}
    names = {c.pk: name for name, c in world.contacts.items()}
    for purpose in purposes:
        for chan in CHANNELS:
            keys = {c.pk: address_key(chan, c.address_for(chan) or "") for c in contacts}
            live = gate._decide_keys(keys, channel=chan, purpose=purpose, at=at)
            folded = gate._decide_history(contacts, keys, channel=chan, purpose=purpose, at=at)
            for contact in contacts:
                where = (names[contact.pk], purpose.key, chan)
                sql, fold = as_tuple(live[contact.pk]), as_tuple(folded[contact.pk])
                assert sql == fold, f"{where}: live gate {sql} != fold {fold}"
                outcomes[where] = sql
    return outcomes


def assert_state_verifies() -> None:
    _, mismatches = state_verify()
    assert not mismatches, [m.describe() for m in mismatches]


class _Rollback(Exception):
    """Ends an example: everything it wrote is rolled back, the next starts from a clean ledger."""


@contextmanager
def rolled_back() -> Iterator[None]:
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


# --- the property -----------------------------------------------------------------------------


def test_the_live_gate_and_the_fold_agree_on_random_ledgers(
    brand: Brand, make_contact: MakeContact, make_purpose: MakePurpose
) -> None:
    seen: set[str] = set()

    @settings(
        max_examples=60,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.lists(operation, min_size=10, max_size=40), st.booleans(), st.booleans())
    def run(ops: list[Op], minor_at_last: bool, soft_off_at_last: bool) -> None:
        with rolled_back():
            world = build_world(brand, make_contact, make_purpose)
            for op in ops:
                try:
                    apply(world, op)
                except (Conflict, Forbidden, InvalidInput):
                    continue
            if minor_at_last:  # the birth date of a contact with grants turns up at last
                apply(world, ("reveal_minor", {"who": "nobuy", "back": None}))
            if soft_off_at_last:  # the purpose stops permitting the soft opt-in
                apply(world, ("toggle_soft_opt_in", {"who": "member", "back": None}))
            outcomes = compare_all(world)
            assert_state_verifies()
            for _, reason, _ in outcomes.values():
                seen.add(reason.split(":")[0])
                event(reason.split(":")[0])  # --hypothesis-show-statistics lists them

    run()
    # Which rules the examples reach depends a little on ids from earlier tests (addresses,
    # chains), so every rule is held to the comparison by the walk below; here: not trivial.
    assert len(seen & REACHABLE) >= 8, sorted(seen)


# --- every rule, one by one ---------------------------------------------------------------------


def test_each_rule_of_the_precedence_is_decided_alike_by_the_state_and_the_fold(
    brand: Brand, make_contact: MakeContact, make_purpose: MakePurpose, guardian: Contact
) -> None:
    buyer_since = timezone.now() - dt.timedelta(days=30)
    soft = make_purpose("fit24-member-dialogue", allows_soft_opt_in=True)
    fresh = make_purpose("fit24-newsletter")
    services.purpose_notice_publish(purpose=fresh, text="Second edition")
    fresh = services.purpose_update(purpose=fresh, min_notice_version=2, consent_lifetime_days=LIFETIME_DAYS)
    service = make_purpose("fit24-service-messages", marketing=False)
    turned = make_purpose("fit24-turned-marketing", marketing=False)
    long_ago = timezone.now() - dt.timedelta(days=LIFETIME_DAYS + 1)

    def consent(contact: Contact, purpose: Purpose, **extra: Any) -> ConsentEvent:
        extra.setdefault("source", "front_desk")
        extra.setdefault("principal", STAFF)
        return services.consent_grant(
            contact=contact, channel="email", purpose=purpose, basis=extra.pop("basis", "consent"), **extra
        )

    cases: list[tuple[str, Contact, Purpose]] = []

    def case(reason: str, contact: Contact, purpose: Purpose) -> None:
        cases.append((reason, contact, purpose))

    c = make_contact()
    consent(c, soft)
    services.suppression_add(
        channel="email",
        address=c.email or "",
        reason="hard_bounce",
        source="api",
        principal=STAFF,
        brand=brand,
    )
    case("suppressed:hard_bounce", c, soft)

    c = make_contact()
    consent(c, soft)
    services.objection_record(contact=c, source="rights_request", principal=SELF)
    c = update(c, email=f"new.{c.pk}@example.no")  # the objection follows the contact
    case("objection", c, soft)

    c = make_contact()
    consent(c, soft)
    services.restriction_set(contact=c, source="rights_request", principal=STAFF)
    case("restricted", c, soft)

    c = make_contact()
    consent(c, soft)
    services.consent_withdraw(
        contact=c, channel="email", purpose=soft, source="unsubscribe_link", principal=SELF
    )
    case("withdrawn", c, soft)

    c = make_contact()
    consent(c, soft)
    c = update(c, birth_date=a_minor())
    case("minor_without_guardian", c, soft)

    c = make_contact(birth_date=a_minor(), guardian_id=guardian.pk)
    consent(c, soft, principal=as_guardian(guardian))
    case("consent", c, soft)

    c = make_contact(purchase_at=buyer_since)
    consent(c, soft, basis="soft_opt_in", opt_out_offered=True)
    case("soft_opt_in", c, soft)

    c = make_contact(purchase_at=buyer_since)
    consent(c, soft, basis="soft_opt_in", opt_out_offered=False)
    case("soft_opt_in_not_applicable", c, soft)

    c = make_contact()
    consent(c, service, basis="contract")
    case("contract", c, service)

    c = make_contact()
    consent(c, turned, basis="contract")
    # No service turns a purpose into a marketing one; the rule is there for data that predates it.
    Purpose.objects.filter(pk=turned.pk).update(marketing=True)
    case("basis_not_permitted", c, turned)

    c = make_contact()
    consent(c, fresh, notice_version=1)
    case("stale_notice", c, fresh)

    c = make_contact()
    consent(c, fresh, occurred_at=long_ago)
    case("consent_expired", c, fresh)

    c = make_contact()
    consent(c, soft, source="web_form", principal=SELF)
    case("awaiting_confirmation", c, soft)

    case("no_consent", make_contact(), soft)

    at = timezone.now()
    decided: dict[str, Outcome] = {}
    for reason, contact, purpose in cases:
        contact = Contact.objects.get(pk=contact.pk)
        purpose = Purpose.objects.get(pk=purpose.pk)
        keys = {contact.pk: address_key("email", contact.email or "")}
        sql = as_tuple(gate._decide_keys(keys, channel="email", purpose=purpose, at=at)[contact.pk])
        fold = as_tuple(
            gate._decide_history([contact], keys, channel="email", purpose=purpose, at=at)[contact.pk]
        )
        assert sql == fold, f"{reason}: live gate {sql} != fold {fold}"
        assert sql[1] == reason
        assert sql[2] is not None or reason == "no_consent"
        decided[reason] = sql
    assert {reason.split(":")[0] for reason in decided} >= REACHABLE | {"basis_not_permitted"}
    assert_state_verifies()
